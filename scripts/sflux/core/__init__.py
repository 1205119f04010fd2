"""Paths, the one-line error type, the Spark session and in-process dbt: what every other subpackage uses."""
