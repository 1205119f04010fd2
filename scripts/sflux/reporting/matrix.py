"""The City Stress Matrix as a plain-text table (scripts/show_matrix.py):
average heart rate per city x subscription tier, suppressed cells named."""

from __future__ import annotations

from sflux.core.errors import UserError
from sflux.core.spark import table_exists

MATRIX = "analytics.fct_city_stress_matrix"
CELLS = "analytics.fct_city_heart_rate"


def render(rows: list[dict[str, object]], tiers: list[str], suppressed: set[tuple[str, str]], decimals: int) -> str:
    header = ["city", *tiers]
    body: list[list[str]] = []
    for row in rows:
        cells = [str(row["city"])]
        for tier in tiers:
            value = row[f"avg_hr_{tier.lower()}"]
            if value is not None:
                cells.append(f"{value:.{decimals}f}")
            elif (row["city"], tier) in suppressed:
                cells.append("suppressed")
            else:
                cells.append("-")
        body.append(cells)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(line, widths))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body)])


def matrix_text(spark, decimals: int) -> str:
    """The matrix read from the marts, as a table. UserError before the
    marts are built."""
    for table in (MATRIX, CELLS):
        if not table_exists(spark, table):
            raise UserError(f"{table} does not exist yet: run `make build` (dbt build) first")
    tiers = [
        r["subscription_type"]
        for r in spark.sql("select subscription_type from analytics.subscription_tiers order by tier_rank").collect()
    ]
    rows = [r.asDict() for r in spark.sql(f"select * from {MATRIX} order by city").collect()]
    suppressed = {
        (r["city"], r["subscription_type"])
        for r in spark.sql(f"select city, subscription_type from {CELLS} where is_suppressed").collect()
    }
    return render(rows, tiers, suppressed, decimals)
