"""SantéFlux's Python package, grouped by job:

- ``core``: paths, the one-line error type, the Spark session and dbt run
  in-process;
- ``generate``: the synthetic landing data;
- ``ingest``: the landing contract and the raw loader;
- ``privacy``: the pseudonymization key, column policies, the token vault,
  the audit log and PII detection;
- ``gdpr``: data-subject export, erasure and verification;
- ``reporting``: the city explorer, the matrix table and the offline dashboard;
- ``cluster``: a local standalone cluster with a Thrift server;
- ``bench``: the benchmark's jobs and runner.

Installed editable into .venv by ``make setup`` (pyproject.toml at the repo
root); the CLIs in scripts/ are thin wrappers around it.
"""
