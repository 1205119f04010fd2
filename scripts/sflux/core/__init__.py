"""Paths, the one-line error type and the Spark session: what every other subpackage uses."""
