"""``/release status`` as an embed."""

from __future__ import annotations

import discord

from conductor.releases.assembly import AssemblyOutcome, AssemblyStep
from conductor.releases.runs import RunView, StepView
from conductor.states import ReleaseState, ShipStepStatus
from conductor.text import (
    clip,
    fenced,
    member_line,
    rc_line,
    rc_tests_line,
    release_line,
    seconds,
)
from conductor.views import ReleaseView, StatusView


def status_embed(status: StatusView) -> discord.Embed:
    active = status.active
    if active is None:
        embed = discord.Embed(
            title="No active release", description="Open one with `/release open`."
        )
    else:
        members = "\n".join(member_line(m) for m in active.members) or "_no members yet_"
        embed = discord.Embed(title=release_line(active), description=members[:4000])
        embed.add_field(
            name="Opened", value=f"by {active.opened_by} <t:{int(active.opened_at.timestamp())}:R>"
        )
        built = [line for line in (rc_line(active), rc_tests_line(active)) if line]
        if built:
            if active.rc_tests is not None and not active.rc_tests.passed:
                built.append(fenced(clip(active.rc_tests.tail, 700)))
            embed.add_field(name="RC", value="\n".join(built)[:1024], inline=False)
        if status.blockers:
            embed.add_field(name="Next", value="\n".join(status.blockers)[:1000], inline=False)
    if status.last_shipped is not None:
        embed.add_field(name="Last shipped", value=release_line(status.last_shipped), inline=False)
    return embed


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


STEP_LABELS = {
    "deploy": "deploy",
    "health": "health gate",
    "ship": "state flip",
    "seal": "smoke seal",
    "notes": "notes",
}
STEP_ICONS = {
    ShipStepStatus.PENDING: "▫️",
    ShipStepStatus.RUNNING: "⏳",
    ShipStepStatus.DONE: "✅",
    ShipStepStatus.SKIPPED: "⏭️",
    ShipStepStatus.FAILED: "❌",
    ShipStepStatus.INTERRUPTED: "⚠️",
}
RUNNING_TEXT = {
    "deploy": "deploying…",
    "health": "waiting for production to answer 200…",
    "ship": "flipping the release and its members…",
    "seal": "checking production…",
    "notes": "posting…",
}


def _step_line(step: StepView) -> str:
    label, status = STEP_LABELS[step.name], step.status
    summary = str(step.outcome.get("summary") or "")
    took = f" · {seconds(step.duration_ms)}" if step.duration_ms is not None else ""
    if status is ShipStepStatus.RUNNING:
        return f"⏳ {label}: {RUNNING_TEXT[step.name]}"
    if status is ShipStepStatus.PENDING:
        return f"▫️ {label}"
    if step.name == "seal" and status is ShipStepStatus.DONE:
        return f"{clip(summary, 600)}{took}"  # the seal line itself
    if step.name == "seal" and status is ShipStepStatus.SKIPPED:
        return "⚪ smoke seal: not run (no `[app]` is configured)"
    if step.name == "notes" and status is ShipStepStatus.DONE:
        link = step.outcome.get("link")
        if link:
            return f"📝 notes: {link}"
        return "⚠️ notes: not posted yet; Conductor retries every few minutes"
    return f"{STEP_ICONS[status]} {label}: {clip(summary, 300)}{took}".rstrip(": ")


def ship_progress(run: RunView, release: ReleaseView) -> str:
    """The ship's one progress message: the release, then one line per step with its state
    and duration, as it goes."""
    if release.state is ReleaseState.SHIPPED:
        head = release_line(release)
    else:
        head = f"🚀 Shipping `{release.slug}` as v{run.version} ({plural(len(release.members), 'member')})"
    lines = [head, *(_step_line(step) for step in run.steps)]
    return "\n".join(lines)[:2000]


ASSEMBLY_STEPS = {"merge": "merging the members into the RC branch", "test": "testing the RC head"}


def assembly_progress(release: ReleaseView, step: AssemblyStep) -> str:
    return f"📦 Assembling `{release.slug}` ({plural(len(release.members), 'member')})…\n⏳ {ASSEMBLY_STEPS[step]}"


def assembly_text(outcome: AssemblyOutcome) -> str:
    """The answer to ``/release assemble``: assembled with its merge order, or (the tests
    failed on the RC head) still assembling with the command's last lines."""
    release = outcome.release
    built = "".join(f"\n{line}" for line in (rc_line(release), rc_tests_line(release)) if line)
    if outcome.assembled:
        members = "\n".join(member_line(m) for m in release.members)
        sep = f"{built}\n" if built else " "
        return f"📦 `{release.slug}` is assembled.{sep}Merge order:\n{members}"[:2000]
    tail = outcome.tests.tail if outcome.tests is not None else ""
    head = f"❌ `{release.slug}` is still assembling: the tests failed.{built}\nLast lines:\n"
    end = "\nFix the member at fault (or `/release remove` it), then `/release assemble` again."
    return head + fenced(clip(tail, 2000 - len(head) - len(end) - 12)) + end
