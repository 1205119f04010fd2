"""sqlfluff, with the dbt templater compiling offline: no Spark session.

`.sqlfluff` sets var `offline_compile`, under which no model asks the
warehouse anything while it compiles. One introspective call is left: the
dbt templater fills dbt's relation cache by listing every schema, which in
session mode starts a Spark JVM and locks the Derby metastore. This wrapper
turns that call into a no-op, then runs the ordinary sqlfluff command line
with the arguments it was given (e.g. `lint models`).
"""

from __future__ import annotations

import sys


def main() -> None:
    from dbt.adapters.spark.impl import SparkAdapter
    from sqlfluff.cli.commands import cli

    # The cache only speeds up adapter.get_relation(); offline nothing calls it.
    SparkAdapter.set_relations_cache = lambda self, *args, **kwargs: None
    sys.exit(cli())


if __name__ == "__main__":
    main()
