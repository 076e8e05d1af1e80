"""The bot's own costs (step 11): the targets ``bench_bot`` and ``bench_wire`` both hold the bot
to, and their verdicts, printed alike."""

from __future__ import annotations

from bench.stalls import STALL_MS

#: the targets (docs/PERFORMANCE.md)
IDLE_RSS_MB = 100.0
HANDOFFS_PER_S = 500.0
REACTIONS_PER_S = 1000.0


def verdict(label: str, met: bool) -> bool:
    print(f"target: {label}: {'met' if met else 'MISSED'}")
    return met


def bot_verdicts(
    *, idle_mb: float, handoffs: float, reactions: float, stall_ms: float
) -> list[bool]:
    """Each target's verdict, printed: idle memory, handoffs and reactions a second, and the
    longest the event loop was held while they flowed."""
    return [
        verdict(f"idle RSS under {IDLE_RSS_MB:.0f} MB ({idle_mb:.1f})", idle_mb < IDLE_RSS_MB),
        verdict(
            f"handoffs through the listener at least {HANDOFFS_PER_S:.0f}/s ({handoffs:.0f})",
            handoffs >= HANDOFFS_PER_S,
        ),
        verdict(
            f"reactions at least {REACTIONS_PER_S:.0f}/s, messages edited ({reactions:.0f})",
            reactions >= REACTIONS_PER_S,
        ),
        verdict(
            f"the event loop never blocked over {STALL_MS:.0f} ms while they flow ({stall_ms:.1f})",
            stall_ms <= STALL_MS,
        ),
    ]
