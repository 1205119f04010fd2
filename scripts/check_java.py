#!/usr/bin/env python3
"""Exit 1 with one line saying how to install Java when Java 17+ is missing.

Spark 4 runs on Java 17 or 21; every Spark step in the Makefile depends on
this check so that a missing JVM is not reported as a 40-line stack trace.
"""

from __future__ import annotations

import sys

from sflux.core.errors import UserError
from sflux.core.spark import require_java


def main() -> int:
    try:
        require_java()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
