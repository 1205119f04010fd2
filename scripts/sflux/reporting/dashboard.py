"""The City Stress dashboard: one self-contained, offline HTML file.

Charts are plotly figures; plotly.js is inlined (`include_plotlyjs=True`), as
are the styles, the data and the few lines of script that swap the trend view
when a city is picked. The file makes no network request, so it opens from
disk on a laptop with no network, and there is no server to run.

Everything here is pure (data in, HTML out) except `git_commit`. The numbers
shown in the trend table also sit in `data-*` attributes at full precision, so
a browser test can compare them with the mart exactly.

A suppressed cell is drawn grey with the word `suppressed`, never as a value
or a zero; a cell without data says `no data`.
"""

from __future__ import annotations

import html
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
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
    matrix: Sequence[dict[str, Any]]  # analytics.city_stress_matrix rows
    cells: Sequence[dict[str, Any]]  # analytics.fct_city_heart_rate rows
    daily: Sequence[dict[str, Any]]  # analytics.fct_city_daily_heart_rate rows
    first_date: date | None
    last_date: date | None
    built_at: datetime
    commit: str
    min_cell_users: int | None = None
    sources: dict[str, str] = field(default_factory=dict)  # label -> table name


def git_commit(repo: Path) -> str:
    """Short commit of the repo, `+dirty` when it has uncommitted changes, or
    `unknown` outside git (a tarball, a CI artefact)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo, capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head or "unknown"


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


def _state_text(state: str) -> str:
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
        else f"{c['city']} · {c['tier']}<br>{_state_text(c['state'])}"
    )
    # Bottom layer: grey for suppressed, near-white for no data; published
    # cells are gaps here and covered by the value layer on top. A suppressed
    # cell therefore never takes a colour from the bpm scale.
    mask = go.Heatmap(
        x=tiers, y=cities,
        z=layer(lambda c: {"suppressed": 1, "no_data": 0}.get(c["state"])),
        zmin=0, zmax=1, colorscale=[[0, NO_DATA_WHITE], [1, SUPPRESSED_GREY]], showscale=False,
        text=layer(lambda c: _state_text(c["state"])), texttemplate="%{text}",
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
                if r["state"] == "published" else f"{tier} {r['reading_date']}: {_state_text(r['state'])}"
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


def _y_range(data: DashboardData) -> tuple[float, float]:
    values = [r["avg_heart_rate"] for r in data.daily if not r["is_suppressed"] and r["avg_heart_rate"] is not None]
    if not values:
        return (40.0, 120.0)
    return (float(min(values)) - 5.0, float(max(values)) + 5.0)


# --------------------------------------------------------------------------
# Page
# --------------------------------------------------------------------------


def _json_for_script(value: Any) -> str:
    """JSON safe inside <script>: no `</script>`, `<!--` or `&` can close or
    confuse the element, whatever a city is called."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _figure_dict(fig) -> dict[str, Any]:
    import plotly.io as pio

    return json.loads(pio.to_json(fig, validate=False))


def _matrix_table(data: DashboardData) -> str:
    cells = matrix_cells(data)
    head = "".join(f"<th scope='col'>{html.escape(t)}</th>" for t in data.tiers)
    body = []
    for city in cities_of(data):
        tds = []
        for c in (c for c in cells if c["city"] == city):
            attrs = f" data-tier='{html.escape(c['tier'], quote=True)}' data-state='{c['state']}'"
            if c["state"] == "published":
                attrs += f" data-avg-heart-rate='{c['avg_heart_rate']!r}'"
                tds.append(f"<td class='num'{attrs}>{c['avg_heart_rate']:.1f}</td>")
            else:
                tds.append(f"<td class='{c['state']}'{attrs}>{_state_text(c['state'])}</td>")
        row_head = f"<th scope='row'>{html.escape(city)}</th>"
        body.append(f"<tr data-city='{html.escape(city, quote=True)}'>{row_head}{''.join(tds)}</tr>")
    return (
        f"<table id='matrix-table'><thead><tr><th scope='col'>city</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def render_dashboard(data: DashboardData) -> str:
    import plotly.io as pio

    cities = cities_of(data)
    trend = trend_rows(data)
    y_range = _y_range(data)
    figures = {city: _figure_dict(trend_figure(data, city, trend[city], y_range)) for city in cities}
    heatmap_html = pio.to_html(
        heatmap_figure(data), include_plotlyjs=True, full_html=False, div_id="matrix-heatmap",
        config=PLOTLY_CONFIG, validate=False,
    )
    n_cells_suppressed = sum(1 for c in data.cells if c["is_suppressed"])
    n_daily_suppressed = sum(1 for r in data.daily if r["is_suppressed"])
    sources = {"matrix": "analytics.city_stress_matrix", "cells": "analytics.fct_city_heart_rate",
               "daily": "analytics.fct_city_daily_heart_rate", **data.sources}
    period = (
        f"{data.first_date.isoformat()} to {data.last_date.isoformat()}"
        if data.first_date and data.last_date else "no data"
    )
    k = f"fewer than {data.min_cell_users} distinct users" if data.min_cell_users else "too few distinct users"
    options = "".join(
        f"<option value='{html.escape(c, quote=True)}'>{html.escape(c)}</option>" for c in cities
    )
    payload = {
        "cities": cities,
        "trend": trend,
        "figures": figures,
        "config": PLOTLY_CONFIG,
        "sources": sources,
    }
    esc = html.escape
    return PAGE.format(
        title="SantéFlux · City Stress dashboard",
        period=esc(period),
        built_at=esc(data.built_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        built_at_iso=esc(data.built_at.isoformat(), quote=True),
        commit=esc(data.commit),
        n_cities=len(cities),
        n_tiers=len(data.tiers),
        n_matrix=len(data.matrix),
        n_cells=len(data.cells),
        n_cells_suppressed=n_cells_suppressed,
        n_daily=len(data.daily),
        n_daily_suppressed=n_daily_suppressed,
        src_matrix=esc(sources["matrix"]),
        src_cells=esc(sources["cells"]),
        src_daily=esc(sources["daily"]),
        k=esc(k),
        heatmap=heatmap_html,
        matrix_table=_matrix_table(data),
        options=options,
        data=_json_for_script(payload),
        style=STYLE,
        script=SCRIPT,
    )


STYLE = """
body {
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  margin: 0; color: #222; background: #fafafa;
}
header { background: #1b3a4b; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 6px; font-size: 1.4rem; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; font-size: 0.9rem; }
header dt { opacity: 0.8; }
header dd { margin: 0; }
main { padding: 16px 24px; max-width: 1100px; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: 12px 16px; margin-bottom: 18px; }
h2 { font-size: 1.15rem; margin: 4px 0 8px; }
.note { font-size: 0.85rem; color: #555; }
.legend-swatch { display: inline-block; width: 0.9em; height: 0.9em; vertical-align: middle; border: 1px solid #999; }
table { border-collapse: collapse; font-size: 0.9rem; margin-top: 8px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 3px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.suppressed { color: #555; background: repeating-linear-gradient(45deg, #e0e0e0 0 4px, #f4f4f4 4px 8px); }
td.no_data { color: #999; }
label { font-weight: 600; margin-right: 8px; }
select { font-size: 1rem; padding: 2px 6px; }
"""

SCRIPT = """
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("dashboard-data").textContent);
  var MEASURES = [
    ["n_users", 0], ["n_readings", 0], ["avg_heart_rate", 1], ["p50_heart_rate", 0], ["p90_heart_rate", 0]
  ];
  var select = document.getElementById("city-select");
  var view = document.getElementById("trend-view");

  function attrName(measure) { return "data-" + measure.replace(/_/g, "-"); }

  function cellFor(row, measure, decimals) {
    var td = document.createElement("td");
    if (row.state === "published") {
      td.className = "num";
      td.textContent = Number(row[measure]).toFixed(decimals);
    } else {
      td.className = row.state;
      td.textContent = row.state === "suppressed" ? "suppressed" : "no data";
    }
    return td;
  }

  function render(city) {
    var rows = DATA.trend[city] || [];
    var fig = DATA.figures[city];
    Plotly.react("trend-chart", fig.data, fig.layout, DATA.config);
    var tbody = document.querySelector("#trend-table tbody");
    tbody.replaceChildren();
    var inMart = 0, suppressed = 0;
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-city", city);
      tr.setAttribute("data-date", row.reading_date);
      tr.setAttribute("data-tier", row.tier);
      tr.setAttribute("data-state", row.state);
      // Full precision for tests and copy-paste; the cells show rounded text.
      MEASURES.forEach(function (m) {
        if (row.state === "published") { tr.setAttribute(attrName(m[0]), String(row[m[0]])); }
      });
      var date = document.createElement("td"); date.textContent = row.reading_date;
      var tier = document.createElement("td"); tier.textContent = row.tier;
      tr.appendChild(date); tr.appendChild(tier);
      MEASURES.forEach(function (m) { tr.appendChild(cellFor(row, m[0], m[1])); });
      tbody.appendChild(tr);
      if (row.state !== "no_data") { inMart += 1; }
      if (row.state === "suppressed") { suppressed += 1; }
    });
    view.setAttribute("data-city", city);
    view.setAttribute("data-rows", String(inMart));
    document.getElementById("trend-city").textContent = city;
    document.getElementById("trend-count").textContent =
      inMart + " rows of " + DATA.sources.daily + " for " + city + " (" + suppressed + " suppressed)";
    if (select.value !== city) { select.value = city; }
    // A link to the file with #City opens on that city. Some browsers
    // refuse history edits on file:// pages; the view works without it.
    try { history.replaceState(null, "", "#" + encodeURIComponent(city)); } catch (e) { /* ignore */ }
  }

  select.addEventListener("change", function () { render(select.value); });
  document.getElementById("matrix-heatmap").on("plotly_click", function (event) {
    var city = event.points && event.points[0] && event.points[0].y;
    if (city && DATA.trend[city]) { render(city); view.scrollIntoView({behavior: "smooth"}); }
  });
  var wanted = "";
  try { wanted = decodeURIComponent(location.hash.slice(1)); } catch (e) { /* malformed hash */ }
  render(DATA.trend[wanted] ? wanted : select.value);
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="SantéFlux scripts/build_report.py">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
  <h1>{title}</h1>
  <dl>
    <dt>Data</dt><dd id="data-range">readings from {period} (UTC reading dates)</dd>
    <dt>Built</dt><dd><time id="built-at" datetime="{built_at_iso}">{built_at}</time></dd>
    <dt>Commit</dt><dd id="git-commit">{commit}</dd>
  </dl>
</header>
<main>
<section id="matrix-view">
  <h2>City Stress Matrix: mean heart rate per city and subscription tier</h2>
  <p class="note" id="matrix-count">{n_cities} cities &times; {n_tiers} tiers, from {src_matrix}
    ({n_matrix} rows) and {src_cells} ({n_cells} cells, {n_cells_suppressed} suppressed).
    <span class="legend-swatch" style="background:#bdbdbd"></span> <b>suppressed</b>: {k} in the cell,
    so no value is published (it is not a zero).
    <span class="legend-swatch" style="background:#f7f7f7"></span> <b>no data</b>: no subscriber of that
    tier in the city.
    Click a city to see its trend.</p>
  {heatmap}
  <details><summary>The matrix as a table</summary>{matrix_table}</details>
</section>
<section id="trend-view">
  <h2>Daily trend: <span id="trend-city"></span></h2>
  <label for="city-select">City</label><select id="city-select">{options}</select>
  <p class="note"><span id="trend-count"></span>; {src_daily} holds {n_daily} rows in all
    ({n_daily_suppressed} suppressed). A day with {k} in a tier is suppressed: a gap in the line
    and an &times; at the foot of the chart, never a value.</p>
  <div id="trend-chart"></div>
  <table id="trend-table">
    <thead><tr><th>date</th><th>tier</th><th>users</th><th>readings</th>
      <th>mean bpm</th><th>p50 bpm</th><th>p90 bpm</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
</main>
<script type="application/json" id="dashboard-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""
