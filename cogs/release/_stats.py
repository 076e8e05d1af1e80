"""``/release stats [days]``: the delivery metrics as text (under Discord's 2,000 characters,
naming the releases behind each figure) with the chart attached."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence

import discord

from bot.charts import stats_png
from bot.client import ConductorBot
from conductor.errors import ConductorError
from conductor.states import BidRole
from conductor.stats import (
    DeliveryStats,
    Forecast,
    check_days,
    delivery_stats,
    duration_text,
    money,
)

#: the chart's file name on the answer
CHART_NAME = "release-stats.png"
#: how many releases a line names before "and N more"
NAMED = 4
ROLE_NAME = {BidRole.PM: "PM", BidRole.PO: "PO", BidRole.DEV: "Dev"}


def _short(slug: str) -> str:
    """A release's slug without its date, to name it briefly."""
    return slug[11:] if len(slug) > 11 and slug[10] == "-" and slug[:4].isdigit() else slug


def named(slugs: Sequence[str], limit: int = NAMED) -> str:
    """`a`, `b`, `c` and 2 more."""
    unique = list(dict.fromkeys(slugs))
    shown = ", ".join(f"`{_short(s)}`" for s in unique[:limit])
    rest = len(unique) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"


def forecast_text(forecast: Forecast, earlier: Forecast | None = None) -> str:
    """``PM 3/5 (60%, actual ×1.32 the bid, ×1.00 before)``: the hit rate and the calibration,
    and the calibration of the window before when it had bids."""
    role = ROLE_NAME[forecast.role]
    if not forecast.bids:
        return f"{role} no bids"
    calibration = forecast.calibration
    before = earlier.calibration if earlier is not None else None
    return (
        f"{role} {forecast.hits}/{forecast.count} ({percent(forecast.hit_rate)}, "
        f"actual ×{calibration:.2f} the bid"
        + (f", ×{before:.2f} before" if before is not None else "")
        + ")"
    )


def tokens_text(tokens: int | None) -> str:
    if tokens is None:
        return "no tokens reported"
    return f"{tokens / 1e6:.1f} M tokens" if tokens >= 100_000 else f"{tokens:,} tokens"


def stats_text(stats: DeliveryStats) -> str:
    """The figures, one line each, with Four Keys' bucket beside each key."""
    lines = [
        f"📈 **Delivery, last {stats.days} day{'s' if stats.days != 1 else ''}** "
        f"({stats.start:%Y-%m-%d} → {stats.end:%Y-%m-%d}, UTC)"
    ]
    if not stats.ships:
        lines.append("Nothing shipped in that window: no figures yet.")
        return "\n".join(lines)
    lines.append(
        f"🚀 Deploy frequency: **{stats.deploys}** ship{'s' if stats.deploys != 1 else ''} "
        f"· {stats.per_week:.1f} a week · Four Keys: **{stats.frequency_bucket}**"
        f" — {named([s.slug for s in reversed(stats.ships)])}"
    )
    if stats.lead_times:
        slowest = max(stats.lead_times, key=lambda lead: lead.seconds)
        lines.append(
            f"⏱️ Lead time for changes: median **{duration_text(stats.lead_median)}**, "
            f"p90 {duration_text(stats.lead_p90)} over {len(stats.lead_times)} "
            f"change{'s' if len(stats.lead_times) != 1 else ''} · Four Keys: under "
            f"**{stats.lead_bucket}** — slowest `{slowest.task}` in `{_short(slowest.release)}`"
        )
    else:
        lines.append("⏱️ Lead time for changes: no handoffs recorded for the shipped tasks")
    failures = stats.failures
    lines.append(
        f"💥 Change failure rate: **{percent(stats.failure_rate)}** ({len(failures)} of "
        f"{stats.deploys}) · Four Keys: **{stats.failure_bucket}**"
        + (f" — {named([s.slug for s in failures])}" if failures else "")
    )
    if stats.restores:
        restored, still_open = stats.restored, stats.still_open
        lines.append(
            f"🩹 Time to restore: median **{duration_text(stats.restore_median)}** over "
            f"{len(restored)} restored"
            + (f" · Four Keys: under **{stats.restore_bucket}**" if restored else "")
            + (f" · still open: {named([r.release for r in still_open])}" if still_open else "")
        )
    lines.append(
        "🎯 Forecast hit rate: "
        + " · ".join(forecast_text(f, stats.earlier_forecast(f.role)) for f in stats.forecasts)
        + (f" (before: the {stats.days} days before)" if any(f.bids for f in stats.earlier) else "")
    )
    unknown = stats.cost_unknown
    costed = len(stats.costed)
    lines.append(
        f"💸 Cost per release: **{money(stats.cost_mean)}** (mean of {costed} with reported "
        f"cost) · {money(stats.cost_total)} in all · {tokens_text(stats.tokens_total)}"
        + (
            f" · {unknown} handoff{'s' if unknown != 1 else ''} reported no cost (unknown)"
            if unknown
            else ""
        )
    )
    return "\n".join(lines)


async def answer_stats(interaction: discord.Interaction[ConductorBot], days: int) -> None:
    """Check the window, defer (the chart takes a moment), read the figures, draw the chart
    off the event loop, and edit the answer with both."""
    if interaction.guild_id is None:
        raise ConductorError("Release commands work in a server, not in direct messages.")
    check_days(days)  # the refusal answers before the defer, ephemerally
    await interaction.response.defer(thinking=True)
    stats = await delivery_stats(interaction.client.database, interaction.guild_id, days)
    png = await asyncio.to_thread(stats_png, stats)
    await interaction.edit_original_response(
        content=stats_text(stats),
        attachments=[discord.File(io.BytesIO(png), CHART_NAME, description="Delivery chart")],
        allowed_mentions=discord.AllowedMentions.none(),
    )
