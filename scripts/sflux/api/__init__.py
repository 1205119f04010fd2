"""The governed, read-only API over the analytics zone (issue 12, section 4).

It reads the marts' parquet files directly, with pyarrow: no Spark JVM, no
metastore, no pseudonymization key. Everything it needs is in this package
(plus ``sflux.core.paths``), so it runs in a process that never had the key.

Modules, by job:
  settings   where the marts, the token store and the audit log live
  personas   conf/personas.yml, the one declaration of who may do what
  tokens     bearer tokens, stored only as SHA-256 hashes
  audit      the append-only JSONL audit log (API requests and token acts)
  snapshot   consistent, cached snapshots of a mart's parquet directory
  views      pure functions: parameters -> validated values, tables -> payloads
  app        the FastAPI application
  bench      the bounded load test behind `make bench-api`
"""
