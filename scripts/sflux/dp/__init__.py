"""Differential privacy: the DPO's release settings, OpenDP noise, the budget ledger and the release."""
