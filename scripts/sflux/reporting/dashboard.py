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
from pathlib import Path
from typing import Any

from sflux.reporting.figures import (
    DashboardData,
    PLOTLY_CONFIG,
    state_text,
    shared_y_range,
    cities_of,
    heatmap_figure,
    matrix_cells,
    trend_figure,
    trend_rows,
)


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
                tds.append(f"<td class='{c['state']}'{attrs}>{state_text(c['state'])}</td>")
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
    y_range = shared_y_range(data)
    figures = {city: _figure_dict(trend_figure(data, city, trend[city], y_range)) for city in cities}
    heatmap_html = pio.to_html(
        heatmap_figure(data), include_plotlyjs=True, full_html=False, div_id="matrix-heatmap",
        config=PLOTLY_CONFIG, validate=False,
    )
    n_cells_suppressed = sum(1 for c in data.cells if c["is_suppressed"])
    n_daily_suppressed = sum(1 for r in data.daily if r["is_suppressed"])
    sources = {"matrix": "analytics.fct_city_stress_matrix", "cells": "analytics.fct_city_heart_rate",
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
        title=esc("SantéFlux · City Stress dashboard"
                  + (f" · tenant {data.tenant}" if data.tenant is not None else " · all members")),
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
