"""Shared code for the SantéFlux scripts: paths, the raw landing contract and
the Spark session. Scripts import it as ``sflux`` (they sit next to it)."""
