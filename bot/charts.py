"""The delivery metrics' chart, a PNG for ``/release stats`` and the board's
``/deployments/stats.png``: deploys per week as bars, the week's median lead time as a line on
a second axis, each week's failed ships as red markers on its bar.

matplotlib is imported only when a chart is drawn (never by a bot at rest), through its
object-oriented API on the Agg canvas: no pyplot, no global figure state, safe in a worker
thread. Drawing is CPU work: callers run :func:`stats_png` in ``asyncio.to_thread``."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conductor.stats import DeliveryStats

#: the picture's size: 900 × 450 pixels
WIDTH_IN, HEIGHT_IN, DPI = 9, 4.5, 100
BAR = "#5865f2"
LINE = "#2b2d31"
FAILED = "#da373c"


def stats_png(stats: DeliveryStats) -> bytes:
    """The chart of ``stats`` as PNG bytes, 900 × 450."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - on use
    from matplotlib.figure import Figure  # noqa: PLC0415 - on use
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - on use

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    deploys = figure.add_subplot()
    weeks = stats.weeks
    x = list(range(len(weeks)))
    labels = [f"{w.start:%b %d}" for w in weeks]
    deploys.bar(x, [w.deploys for w in weeks], color=BAR, width=0.6, label="deploys")
    failed = [(n, w.deploys) for n, w in zip(x, weeks, strict=True) if w.failures]
    if failed:
        deploys.scatter(
            [n for n, _ in failed],
            [top + 0.15 for _, top in failed],
            color=FAILED,
            marker="v",
            s=60,
            zorder=3,
            label="red or rolled back",
        )
    deploys.set_xticks(x, labels, fontsize=8)
    deploys.set_ylabel("deploys per week")
    deploys.set_ylim(0, max([w.deploys for w in weeks] + [1]) * 1.6)
    deploys.yaxis.set_major_locator(MaxNLocator(integer=True))

    lead = deploys.twinx()
    points = [(n, w.lead_median / 3600) for n, w in zip(x, weeks, strict=True) if w.lead_median]
    if points:
        lead.plot(
            [n for n, _ in points],
            [h for _, h in points],
            color=LINE,
            marker="o",
            linewidth=1.5,
            label="median lead time",
        )
    lead.set_ylabel("median lead time (hours)")
    lead.set_ylim(0, max([h for _, h in points] + [1]) * 1.25)  # clear of the legend

    handles, names = deploys.get_legend_handles_labels()
    more, more_names = lead.get_legend_handles_labels()
    deploys.legend(
        handles + more, names + more_names, loc="upper center", ncols=3, fontsize=8, frameon=False
    )
    deploys.set_title(
        f"Last {stats.days} days: {stats.deploys} ships, "
        f"{len(stats.failures)} failed · {stats.frequency_bucket}",
        fontsize=10,
    )
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
