"""An attacker on the same machine as the pipeline's cluster: it knows the
master's address but not the cluster's RPC secret. It submits its own
application and asks the executors, which the workers start with the key in
their environment, for the key. Prints `ADMITTED <value>` if that works and
`REFUSED <error>` otherwise. Run by tests/python/thrift_pipeline.py."""

from __future__ import annotations

import sys

GETENV = "select reflect('java.lang.System', 'getenv', 'DBT_ENV_SECRET_PSEUDONYM_KEY') from range(0, 1, 1, 1)"


def main(master_url: str) -> int:
    from pyspark.sql import SparkSession

    try:
        spark = (SparkSession.builder.master(master_url).appName("attacker")
                 .config("spark.ui.enabled", "false").config("spark.driver.memory", "512m")
                 .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                 .config("spark.cores.max", "1").getOrCreate())
        rows = spark.sql(GETENV).collect()
        print(f"ADMITTED {rows[0][0]}", flush=True)
    except Exception as exc:  # noqa: BLE001 - any failure is a refusal; say which
        print(f"REFUSED {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
