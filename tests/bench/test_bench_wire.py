"""The wire benchmark runs end to end at a tiny size: the bot as ``conductor run`` in a process
of its own (under ``bench.loopwatch``), the stand-in Discord here, every figure printed."""

from __future__ import annotations

import pytest

from bench import bench_wire


def test_the_wire_benchmark_runs_at_a_tiny_size(capsys: pytest.CaptureFixture[str]) -> None:
    bench_wire.main(handoffs=30, reviews=6, wave=10)  # a missed target is no failure here
    out = capsys.readouterr().out
    assert "RSS of the bot's process, started, every cog loaded, idle: " in out
    # both reviewers on six requests: twelve ✅ counted and the six messages edited
    assert "reactions: 12 ✅ (both reviewers on 6 requests, at once) counted" in out
    # thirty handoffs in three waves: ten tasks submitted, ten review requests posted
    assert "handoffs through the listener: 30 in " in out
    assert "10 review requests posted" in out
    # each handoff acknowledged, each request seeded with ✅ and ❌, each request posted
    assert "PUT /channels/{channel_id}/messages/{message_id}/reactions/" in out
    assert "the bot's event loop during the handoffs: longest callback " in out
    assert out.count("target: ") == 4
