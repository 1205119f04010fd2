"""The dashboard's data and charts: DashboardData, the view models (plain
dicts shared by the figures, the tables and the page script) and the plotly
figures. Pure: data in, figures out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sflux.reporting import city_trends as report


# One colour per tier (in rank order) on every chart, so that VIP is the same
# colour for every city; plotly's default palette would shift when a city
# lacks a tier.
TIER_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
SUPPRESSED_GREY = "#bdbdbd"
NO_DATA_WHITE = "#f7f7f7"
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True)
class DashboardData:
    """What the dashboard shows, as read from the marts."""

    tiers: Sequence[str]
    matrix: Sequence[dict[str, Any]]  # analytics.fct_city_stress_matrix rows
    cells: Sequence[dict[str, Any]]  # analytics.fct_city_heart_rate rows
    daily: Sequence[dict[str, Any]]  # analytics.fct_city_daily_heart_rate rows
    first_date: date | None
    last_date: date | None
    built_at: datetime
    commit: str
    min_cell_users: int | None = None
    sources: dict[str, str] = field(default_factory=dict)  # label -> table name
    tenant: str | None = None  # None: all members; else only this tenant's rows


# --------------------------------------------------------------------------
# View models: plain dicts, shared by the figures, the tables and the script
# --------------------------------------------------------------------------


def cities_of(data: DashboardData) -> list[str]:
    return report.sort_names({r["city"] for r in data.matrix} | {r["city"] for r in data.daily})


def trend_rows(data: DashboardData) -> dict[str, list[dict[str, Any]]]:
    """Per city, every date x tier of the data's range with its state and
    measures (None unless published)."""
    by_city: dict[str, list[dict[str, Any]]] = {c: [] for c in cities_of(data)}
    for row in data.daily:
        by_city[row["city"]].append(row)
    days = report.date_span(data.first_date, data.last_date) if data.first_date and data.last_date else []
    out: dict[str, list[dict[str, Any]]] = {}
    for city, rows in by_city.items():
        out[city] = [
            {
                "reading_date": cell.reading_date.isoformat(),
                "tier": cell.tier,
                "state": cell.state,
                **{m: (cell.value(m) if cell.state == "published" else None) for m in report.MEASURES},
            }
            for cell in report.trend_grid(rows, data.tiers, days)
        ]
    return out


def matrix_cells(data: DashboardData) -> list[dict[str, Any]]:
    """Every city x tier of the heatmap: the matrix value and the cell's state."""
    cells = {(c["city"], c["subscription_type"]): c for c in data.cells}
    matrix = {r["city"]: r for r in data.matrix}
    out = []
    for city in cities_of(data):
        for tier in data.tiers:
            cell = cells.get((city, tier))
            value = matrix.get(city, {}).get(report.tier_column(tier))
            state = "no_data" if cell is None else ("suppressed" if cell["is_suppressed"] else "published")
            out.append({
                "city": city,
                "tier": tier,
                "state": state,
                "avg_heart_rate": value if state == "published" else None,
                "n_users": cell["n_users"] if cell and state == "published" else None,
                "n_readings": cell["n_readings"] if cell and state == "published" else None,
            })
    return out


# --------------------------------------------------------------------------
# Figures (plotly)
# --------------------------------------------------------------------------


def state_text(state: str) -> str:
    return {"suppressed": "suppressed", "no_data": "no data"}.get(state, "")


def heatmap_figure(data: DashboardData):
    import plotly.graph_objects as go

    cities = cities_of(data)
    tiers = list(data.tiers)
    grid = {(c["city"], c["tier"]): c for c in matrix_cells(data)}

    def layer(fn):
        return [[fn(grid[(city, tier)]) for tier in tiers] for city in cities]

    hover_value = layer(
        lambda c: (
            f"{c['city']} · {c['tier']}<br>mean {c['avg_heart_rate']:.1f} bpm<br>"
            f"{c['n_users']} users, {c['n_readings']} readings"
        )
        if c["state"] == "published"
        else f"{c['city']} · {c['tier']}<br>{state_text(c['state'])}"
    )
    # Bottom layer: grey for suppressed, near-white for no data; published
    # cells are gaps here and covered by the value layer on top. A suppressed
    # cell therefore never takes a colour from the bpm scale.
    mask = go.Heatmap(
        x=tiers, y=cities,
        z=layer(lambda c: {"suppressed": 1, "no_data": 0}.get(c["state"])),
        zmin=0, zmax=1, colorscale=[[0, NO_DATA_WHITE], [1, SUPPRESSED_GREY]], showscale=False,
        text=layer(lambda c: state_text(c["state"])), texttemplate="%{text}",
        textfont={"color": "#333333"},
        hovertext=hover_value, hoverinfo="text", xgap=3, ygap=3, name="not published",
    )
    values = go.Heatmap(
        x=tiers, y=cities,
        z=layer(lambda c: c["avg_heart_rate"]),
        colorscale="YlOrRd", colorbar={"title": {"text": "mean bpm"}},
        text=layer(lambda c: f"{c['avg_heart_rate']:.1f}" if c["state"] == "published" else ""),
        texttemplate="%{text}",
        hovertext=hover_value, hoverinfo="text", xgap=3, ygap=3, name="mean heart rate",
    )
    fig = go.Figure([mask, values])
    fig.update_layout(
        height=140 + 34 * max(len(cities), 1),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"type": "category", "side": "top", "title": None},
        yaxis={"type": "category", "autorange": "reversed", "title": None, "automargin": True},
        plot_bgcolor="white",
    )
    return fig


def trend_figure(data: DashboardData, city: str, rows: Sequence[dict[str, Any]], y_range: tuple[float, float]):
    import plotly.graph_objects as go

    traces = []
    for index, tier in enumerate(data.tiers):
        colour = TIER_COLOURS[index % len(TIER_COLOURS)]
        mine = [r for r in rows if r["tier"] == tier]
        published = [r for r in mine if r["state"] == "published"]
        # None makes a gap: suppressed and empty days are never joined over.
        traces.append(go.Scatter(
            x=[r["reading_date"] for r in mine],
            y=[r["avg_heart_rate"] for r in mine],
            mode="lines+markers", connectgaps=False, name=f"{tier}",
            line={"color": colour}, marker={"color": colour, "size": 8},
            showlegend=bool(published),
            hovertext=[
                f"{tier} {r['reading_date']}<br>mean {r['avg_heart_rate']:.1f} bpm, p50 {r['p50_heart_rate']:.0f}, "
                f"p90 {r['p90_heart_rate']:.0f}<br>{r['n_users']} users, {r['n_readings']} readings"
                if r["state"] == "published" else f"{tier} {r['reading_date']}: {state_text(r['state'])}"
                for r in mine
            ],
            hoverinfo="text",
        ))
        hidden = [r for r in mine if r["state"] == "suppressed"]
        if hidden:
            # On a hidden 0..1 axis, so the marks sit at the foot of the
            # chart whatever the bpm scale, one row per tier.
            traces.append(go.Scatter(
                x=[r["reading_date"] for r in hidden], y=[0.04 + 0.05 * index] * len(hidden),
                yaxis="y2", mode="markers", name=f"{tier}: suppressed",
                marker={"symbol": "x-thin-open", "size": 10, "color": colour, "line": {"width": 2}},
                hovertext=[f"{tier} {r['reading_date']}: suppressed (too few users)" for r in hidden],
                hoverinfo="text",
            ))
    fig = go.Figure(traces)
    first, last = data.first_date, data.last_date
    xaxis: dict[str, Any] = {"type": "date", "title": {"text": "reading date (UTC)"}}
    if first and last:
        # Half a day of margin each side, so the first and last points are
        # whole markers rather than clipped at the frame.
        xaxis["range"] = [f"{(first - timedelta(days=1)).isoformat()} 12:00", f"{last.isoformat()} 12:00"]
        if (last - first).days <= 31:
            xaxis["dtick"] = 86_400_000  # one tick per day, not per 12 h
            xaxis["tickformat"] = "%Y-%m-%d"
    fig.update_layout(
        title={"text": f"{city}: mean heart rate per day and tier"},
        height=380,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis=xaxis,
        # One bpm scale for every city, so switching cities compares like with like.
        yaxis={"title": {"text": "mean heart rate (bpm)"}, "range": list(y_range), "automargin": True},
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        legend={"orientation": "h", "y": -0.25},
        plot_bgcolor="white",
    )
    fig.update_xaxes(gridcolor="#eeeeee")
    fig.update_yaxes(gridcolor="#eeeeee")
    return fig


def shared_y_range(data: DashboardData) -> tuple[float, float]:
    values = [r["avg_heart_rate"] for r in data.daily if not r["is_suppressed"] and r["avg_heart_rate"] is not None]
    if not values:
        return (40.0, 120.0)
    return (float(min(values)) - 5.0, float(max(values)) + 5.0)


