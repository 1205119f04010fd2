"""Privacy: the pseudonymization key, column policies, the token vault, the audit log and PII detection."""
