"""``/deployments/stats`` and its chart over real HTTP on 127.0.0.1: the figures of the seeded
history (``tests/stats_history.py``, as of now) as text with Four Keys' buckets, each naming
the ships behind it (anchors on the page), the chart a 900 × 450 PNG described in its alt
text; a window out of range or not a number is a 400 that says why."""

from __future__ import annotations

import re

from store.db import Database
from store.types import utcnow
from tests.bot.web.conftest import Served
from tests.bot.web.test_routes import get
from tests.helpers import png_size
from tests.stats_history import seed_history


def text_of(html: str, element_id: str) -> str:
    """The text inside the element ``id`` (tags dropped, spaces squeezed)."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(dd|tr|li)>', html, re.S)
    assert found is not None, element_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()


async def test_the_page_shows_the_figures_and_the_ships_behind_them(
    served: Served, db: Database
) -> None:
    await seed_history(db, now=utcnow())

    response, body = await get(served, "/deployments/stats")
    assert response.status == 200
    html = body.decode()
    # the same figures as tests/conductor/test_stats.py and the command
    frequency = text_of(html, "deploy-frequency")  # its bucket depends on today's weekday
    assert frequency.startswith("5 ships · 1.2 a week · Four Keys: ")
    assert frequency.endswith(" — delta, epsilon, zeta, eta, theta")
    assert text_of(html, "lead-time") == (
        "median 1 d 11 h, p90 3 d 7 h over 8 changes · Four Keys: under one week "
        "— delta, epsilon, zeta, eta, theta"
    )
    assert text_of(html, "change-failure-rate") == (
        "40% (2 of 5) · Four Keys: 16-45% — epsilon, eta"
    )
    assert text_of(html, "time-to-restore") == (
        "median 3 h over 1 restored · Four Keys: under one day — epsilon · still open: — eta"
    )
    assert text_of(html, "cost") == (
        "$7.25 (mean of 4 with reported cost) · $29.00 in all · 5 handoffs reported no cost "
        "(unknown) — delta, epsilon, eta, theta"
    )
    assert text_of(html, "forecast-pm") == (
        "PM3 of 560%×1.32×1.00 (1 of 1)t4a M→M, t4b M→L, t5a S→S, t6b L→XL, t8b L→L"
    )
    assert text_of(html, "forecast-dev").startswith("Dev6 of 786%×0.91×1.41 (1 of 2)")
    # each figure links to the ships' lines on the page
    assert '<a href="#ship-2026-02-27-eta">eta</a>' in html
    assert 'id="ship-2026-02-27-eta"' in html
    assert "🔴 red at its seal" in text_of(html, "ship-2026-02-12-epsilon")
    assert "⏪ rolled back" in text_of(html, "ship-2026-02-12-epsilon")
    # the chart, and what it shows in words
    [src] = re.findall(r'<img src="([^"]+)"', html)
    assert src.replace("&amp;", "&").startswith("/deployments/stats.png?guild=1001&days=30")
    alt = re.search(r'alt="([^"]+)"', html)
    assert alt is not None and alt.group(1).startswith(
        "Deploys per week over the last 30 days, with the median lead time: week of "
    )
    chart, png = await get(served, src.replace("&amp;", "&"))
    assert (chart.status, chart.content_type) == (200, "image/png")
    assert png_size(png) == (900, 450)

    sixty, body = await get(served, "/deployments/stats?days=60")
    assert sixty.status == 200
    assert text_of(body.decode(), "change-failure-rate") == (
        "50% (4 of 8) · Four Keys: 46-60% — beta, gamma, epsilon, eta"
    )


async def test_a_window_out_of_range_or_not_a_number_is_refused(served: Served) -> None:
    for query, said in (
        ("?days=0", "days is how far back the figures look: 1 to 365 (default 30); 0 is out"),
        ("?days=abc", "days: expected a number of days, 1 to 365."),
        ("?days=99999999", "days: expected a number of days, 1 to 365."),
    ):
        page, body = await get(served, "/deployments/stats" + query)
        assert page.status == 400 and said in body.decode(), (query, body)
        chart, body = await get(served, "/deployments/stats.png" + query)
        assert chart.status == 400 and said in body.decode(), (query, body)
