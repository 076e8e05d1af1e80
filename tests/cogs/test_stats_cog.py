"""``/release stats [days]`` through simcord: anyone may ask; the figures of the seeded history
(``tests/stats_history.py``, as of now) as text, the chart attached (a 900 × 450 PNG); a
window out of range refused before anything is drawn; nothing in it pings."""

from __future__ import annotations

from bot.charts import HEIGHT_IN, WIDTH_IN
from bot.sample import GUILD_ID
from cogs.release._stats import CHART_NAME
from store.types import utcnow
from tests.helpers import World, png_size, refused
from tests.stats_history import seed_history


async def test_stats_answer_with_the_figures_and_the_chart(world: World) -> None:
    await seed_history(world.bot.database, now=utcnow(), guild_id=GUILD_ID)

    answer = await world.bob.slash(world.general, "release stats")  # anyone, 30 days
    assert not answer.ephemeral
    message = answer.response
    text = message.content
    lines = text.splitlines()
    # the figures worked out in tests/conductor/test_stats.py (none depends on the weekday)
    assert lines[0].startswith("📈 **Delivery, last 30 days** (")
    assert lines[1].startswith("🚀 Deploy frequency: **5** ships · 1.2 a week · Four Keys: ")
    assert lines[2] == (
        "⏱️ Lead time for changes: median **1 d 11 h**, p90 3 d 7 h over 8 changes · "
        "Four Keys: under **one week** — slowest `t8b` in `theta`"
    )
    assert lines[3] == (
        "💥 Change failure rate: **40%** (2 of 5) · Four Keys: **16-45%** — `epsilon`, `eta`"
    )
    assert lines[4] == (
        "🩹 Time to restore: median **3 h** over 1 restored · Four Keys: under **one day** · "
        "still open: `eta`"
    )
    assert lines[5] == (
        "🎯 Forecast hit rate: PM 3/5 (60%, actual ×1.32 the bid, ×1.00 before) · PO 1/4 "
        "(25%, actual ×0.84 the bid, ×1.00 before) · Dev 6/7 (86%, actual ×0.91 the bid, "
        "×1.41 before) (before: the 30 days before)"
    )
    assert lines[6] == (
        "💸 Cost per release: **$7.25** (mean of 4 with reported cost) · $29.00 in all · "
        "0.3 M tokens · 5 handoffs reported no cost (unknown)"
    )
    [chart] = message.attachments
    assert chart.filename == CHART_NAME
    assert png_size(await chart.read()) == (WIDTH_IN * 100, HEIGHT_IN * 100)
    stored = world.env.backend.messages[message.channel_id][message.id]
    assert not (stored.ping_user_ids or stored.ping_role_ids or stored.mention_everyone)

    longer = await world.bob.slash(world.general, "release stats", days=60)
    assert "💥 Change failure rate: **50%** (4 of 8)" in longer.response.content
    assert len(longer.response.attachments) == 1


async def test_a_window_out_of_range_is_refused(world: World) -> None:
    result = await world.bob.slash(world.general, "release stats", days=400)
    refused(world.env, result, "`days` is how far back the figures look: 1 to 365")
    assert result.response.attachments == []


async def test_nothing_shipped_says_so(world: World) -> None:
    answer = await world.bob.slash(world.general, "release stats", days=7)
    assert answer.response.content.splitlines()[1] == (
        "Nothing shipped in that window: no figures yet."
    )
    assert len(answer.response.attachments) == 1
