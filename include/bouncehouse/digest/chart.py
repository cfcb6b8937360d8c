"""The digest's chart: the last 30 days' daily bounce and complaint rates against SES's limits, as PNG."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import date
from typing import Any

from bouncehouse.digest.data import (
    BOUNCE_PAUSE,
    BOUNCE_REVIEW,
    COMPLAINT_PAUSE,
    COMPLAINT_REVIEW,
    DayPoint,
)


def rates_chart_png(series: Sequence[DayPoint]) -> bytes:
    """Two stacked panels (their scales differ 50x), each with dashed review and pause lines.

    Uses matplotlib's object API on an Agg canvas: no pyplot global state, no display needed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    days = [point.day for point in series]
    panels = (
        (
            "Bounce rate (hard bounces / sent)",
            [p.bounce_rate for p in series],
            BOUNCE_REVIEW,
            BOUNCE_PAUSE,
            "#c0392b",
        ),
        (
            "Complaint rate (complaints / sent)",
            [p.complaint_rate for p in series],
            COMPLAINT_REVIEW,
            COMPLAINT_PAUSE,
            "#8e44ad",
        ),
    )
    figure = Figure(figsize=(7.2, 5.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 1, sharex=True)
    for ax, (title, rates, review, pause, colour) in zip(axes, panels, strict=True):
        _draw_panel(ax, days, title, rates, review, pause, colour)
    if days:
        axes[-1].set_xlim(days[0], days[-1])
    figure.autofmt_xdate(rotation=30)
    figure.suptitle(
        f"Daily rates by send day, {days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d} (UTC)" if days else "",
        fontsize=10,
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _draw_panel(
    ax: Any, days: list[date], title: str, rates: list[float | None], review: float, pause: float, colour: str
) -> None:
    """One rate's daily line, capped so the review and pause lines stay readable."""
    from matplotlib.ticker import FuncFormatter

    values = [math.nan if rate is None else rate * 100 for rate in rates]
    # A day with a handful of sends can reach 100%; cap the scale so the limit lines stay readable
    # and mark the days above it with an arrow and their value.
    top = pause * 100 * 2.5
    highest = max((v for v in values if not math.isnan(v)), default=0.0)
    y_max = max(pause * 100 * 1.2, min(highest * 1.1, top))
    shown = [min(v, y_max) if not math.isnan(v) else v for v in values]
    ax.plot(days, shown, marker="o", markersize=3, linewidth=1.6, color=colour, label="daily rate")
    for day, value in zip(days, values, strict=True):
        if not math.isnan(value) and value > y_max:
            ax.plot([day], [y_max], marker="^", markersize=7, color=colour, clip_on=False)
            ax.annotate(f"{value:.3g}%", (day, y_max), textcoords="offset points", xytext=(0, -14),
                        ha="center", fontsize=7, color=colour)  # fmt: skip
    ax.axhline(
        review * 100, color="#e67e22", linestyle="--", linewidth=1.2, label=f"review {review * 100:g}%"
    )
    ax.axhline(pause * 100, color="#c0392b", linestyle=":", linewidth=1.4, label=f"pause {pause * 100:g}%")
    ax.set_ylim(0, y_max)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}%"))
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(True, axis="y", alpha=0.3)
    # Above the plot, right of the title: never on top of the data.
    ax.legend(
        loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False, ncol=3, borderaxespad=0.2
    )
    ax.tick_params(labelsize=8)
