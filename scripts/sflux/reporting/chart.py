"""The city explorer's PNG chart (matplotlib, headless Agg backend).

Suppressed cells are drawn as gaps in the line plus a grey `x` on the date
axis, never as a value: a chart that plotted them at 0 would read as a
medical emergency, and one that interpolated across them would invent data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sflux.core.errors import UserError
from sflux.reporting.city_trends import TrendCell


def write_trend_png(path: Path, city: str, cells: Sequence[TrendCell], tiers: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display here, in CI or over ssh
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib import transforms

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    try:
        # The x marks sit just above the date axis whatever the bpm scale.
        on_axis = transforms.blended_transform_factory(ax.transData, ax.transAxes)
        for tier in tiers:
            mine = [c for c in cells if c.tier == tier]
            days = [c.reading_date for c in mine]
            # NaN breaks the line, so a suppressed or empty day is a gap.
            values = [c.value("avg_heart_rate") if c.state == "published" else float("nan") for c in mine]
            published = any(c.state == "published" for c in mine)
            (line,) = ax.plot(days, values, marker="o", label=f"{tier} (mean)" if published else None)
            low = [c.value("p50_heart_rate") if c.state == "published" else float("nan") for c in mine]
            high = [c.value("p90_heart_rate") if c.state == "published" else float("nan") for c in mine]
            ax.fill_between(days, low, high, color=line.get_color(), alpha=0.12, linewidth=0)
            hidden = [c.reading_date for c in mine if c.state == "suppressed"]
            if hidden:
                ax.plot(hidden, [0.03] * len(hidden), "x", color="grey", transform=on_axis, clip_on=False,
                        label=f"{tier}: suppressed")
        ax.set_title(f"{city}: daily heart rate per tier (band: p50 to p90)")
        ax.set_ylabel("heart rate (bpm)")
        ax.set_xlabel("reading date (UTC)")
        days = sorted({c.reading_date for c in cells})
        if len(days) <= 14:
            # The automatic locator puts half-day ticks on a short span,
            # which repeats every date label.
            ax.set_xticks(days)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.grid(alpha=0.3)
        if cells:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.text(0.5, 0.5, "no data in this range", ha="center", va="center", transform=ax.transAxes)
        fig.autofmt_xdate()
        fig.tight_layout()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, format="png")
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
