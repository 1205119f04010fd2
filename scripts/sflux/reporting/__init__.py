"""Reporting: the city explorer, its chart, and the offline City Stress dashboard."""
