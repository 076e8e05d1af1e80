"""The answers of ``/release``: the status embed, the ship's and the assembly's progress, the
lock, the held train's question and the history."""

from __future__ import annotations

import discord

from conductor.costs import breakdown_line, cost_line, stages_line
from conductor.releases.assembly import AssemblyOutcome, AssemblyStep
from conductor.releases.locks import LockOutcome
from conductor.releases.runs.driver import Plan
from conductor.releases.runs.store import RunView, StepView
from conductor.states import LockEventKind, ReleaseState, RunKind, RunStatus, StepName, StepStatus
from conductor.text import (
    LOCK_REASON_LIMIT,
    NAME_LIMIT,
    STATE_ICON,
    clip,
    fenced,
    flat,
    half_rollback_text,
    held_over_line,
    hold_text,
    lock_line,
    member_line,
    production_line,
    rc_line,
    rc_tests_line,
    release_line,
    seal_badge,
    seconds,
    short_sha,
    stamp,
    version,
)
from conductor.views import Hold, LockView, ReleaseView, ShippedView, StatusView

#: Discord's limit on one message's content
MESSAGE_LIMIT = 2000
#: what ``/release history`` keeps free for the line saying how many did not fit
HISTORY_TAIL_ROOM = 80


def status_embed(status: StatusView) -> discord.Embed:
    active = status.active
    if active is None:
        how = "once the train is unlocked" if status.lock is not None else "with `/release open`"
        embed = discord.Embed(title="No active release", description=f"Open one {how}.")
    else:
        members = "\n".join(member_line(m) for m in active.members) or "_no members yet_"
        embed = discord.Embed(title=release_line(active), description=members[:4000])
        held = held_over_line(active)
        if held is not None:
            embed.add_field(name="Held train", value=clip(held, 1024), inline=False)
        embed.add_field(
            name="Opened", value=f"by {active.opened_by} <t:{int(active.opened_at.timestamp())}:R>"
        )
        built = [line for line in (rc_line(active), rc_tests_line(active)) if line]
        if built:
            if active.rc_tests is not None and not active.rc_tests.passed:
                built.append(fenced(clip(active.rc_tests.tail, 700)))
            embed.add_field(name="RC", value="\n".join(built)[:1024], inline=False)
        spent = cost_text(active)
        if spent:
            embed.add_field(name="Cost so far", value=clip(spent, 1024), inline=False)
        if status.blockers:
            embed.add_field(name="Next", value="\n".join(status.blockers)[:1000], inline=False)
    if status.lock is not None:
        embed.insert_field_at(
            0, name="Lock", value=clip(lock_line(status.lock), 1024), inline=False
        )
    production = production_text(status)
    if production is not None:
        embed.add_field(name="Production", value=clip(production, 1024), inline=False)
    return embed


def cost_text(release: ReleaseView) -> str | None:
    """The release's cost line, then what cost most by model and by stage; None when its cost
    was not read."""
    if release.cost is None:
        return None
    lines = (cost_line(release.cost), breakdown_line(release.cost), stages_line(release.cost))
    return "\n".join(clip(line, 300) for line in lines if line)


def production_text(status: StatusView) -> str | None:
    """What production runs (the last shipped release), and whether it holds the train: its
    seal, or a rollback of it stopped half way (main and production disagree)."""
    shipped = status.last_shipped
    if shipped is None:
        return None
    text = production_line(shipped)
    if status.held:
        text += (
            "\n⚠️ The train is held: neither re-sealed green nor rolled back; `/release open` "
            "asks for a confirmation."
        )
    if status.half is not None:
        text += (
            f"\n⚠️ {half_rollback_text(status.half)} The train is held until the rollback is "
            "finished (`/release rollback` again); `/release open` asks for a confirmation."
        )
    spent = cost_text(shipped)
    return f"{text}\n{spent}" if spent else text


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


#: each step of a run, as its progress line names it
STEP_LABELS: dict[StepName, str] = {
    "revert": "revert",
    "deploy": "deploy",
    "health": "health gate",
    "ship": "state flip",
    "flip": "state flip",
    "seal": "smoke seal",
    "notes": "notes",
}
STEP_ICONS = {
    StepStatus.PENDING: "▫️",
    StepStatus.RUNNING: "⏳",
    StepStatus.DONE: "✅",
    StepStatus.SKIPPED: "⏭️",
    StepStatus.FAILED: "❌",
    StepStatus.INTERRUPTED: "⚠️",
}
_RUNNING: dict[StepName, str] = {
    "revert": "reverting the release on main…",
    "deploy": "deploying…",
    "health": "waiting for production to answer 200…",
    "ship": "flipping the release and its members…",
    "flip": "rolling the release back, its members to reviewed…",
    "seal": "checking production…",
    "notes": "posting…",
}
#: what a running step is doing, by kind of run
RUNNING_TEXT: dict[RunKind, dict[StepName, str]] = {
    RunKind.SHIP: _RUNNING,
    RunKind.ROLLBACK: {**_RUNNING, "deploy": "deploying the previous version…"},
    RunKind.REDEPLOY: {**_RUNNING, "deploy": "deploying what production runs, again…"},
}
#: what a run says of notes it could not post (None: the step's own summary)
UNPOSTED: dict[RunKind, str | None] = {
    RunKind.SHIP: "not posted yet; Conductor retries every few minutes",
    RunKind.ROLLBACK: None,
    RunKind.REDEPLOY: None,
}


def step_line(kind: RunKind, step: StepView) -> str:
    """One line of a run's progress: the step, its state, its summary and how long it took."""
    label, status = STEP_LABELS[step.name], step.status
    summary = str(step.outcome.get("summary") or "")
    took = f" · {seconds(step.duration_ms)}" if step.duration_ms is not None else ""
    if status is StepStatus.RUNNING:
        return f"⏳ {label}: {RUNNING_TEXT[kind][step.name]}"
    if status is StepStatus.PENDING:
        return f"▫️ {label}"
    if step.name == "seal" and status is StepStatus.DONE:
        return f"{clip(summary, 600)}{took}"  # the seal line itself
    if step.name == "seal" and status is StepStatus.SKIPPED:
        return "⚪ smoke seal: not run (no `[app]` is configured)"
    if step.name == "notes" and status is StepStatus.DONE:
        link = step.outcome.get("link")
        if link:
            return f"📝 notes: {link}"
        if UNPOSTED[kind] is not None:
            return f"⚠️ notes: {UNPOSTED[kind]}"
    return f"{STEP_ICONS[status]} {label}: {clip(summary, 300)}{took}".rstrip(": ")


def run_progress(head: str, run: RunView) -> str:
    """A run's one progress message: ``head``, then one line per step with its state and
    duration, as it goes."""
    return "\n".join([head, *(step_line(run.kind, step) for step in run.steps)])[:2000]


def ship_progress(run: RunView, release: ReleaseView) -> str:
    """The ship's progress: the release, then its steps."""
    if release.state is ReleaseState.SHIPPED:
        head = release_line(release)
    else:
        head = f"🚀 Shipping `{release.slug}` as v{run.version} ({plural(len(release.members), 'member')})"
    return run_progress(head, run)


def redeploy_progress(run: RunView, release: ReleaseView) -> str:
    """The redeploy's progress: what production runs, then its steps."""
    doing = "Redeployed" if run.status is RunStatus.DONE else "Redeploying"
    return run_progress(f"🔁 {doing} `{release.slug}`{version(release)}", run)


def redeploy_prompt(asker: str, plan: Plan) -> str:
    """What the operator confirms before a redeploy: what production runs, the command, the
    steps after it, the reason."""
    release = plan.release
    sha = f", merge `{short_sha(release.merge_sha)}`" if release.merge_sha else ""
    head = (
        f"🔁 {asker} asks to redeploy `{release.slug}`{version(release)}{sha}: what production "
        f"runs now, deployed again; nothing merged, nothing reverted.\n"
        f"Why: {flat(plan.reason or '', 300)}"
    )
    steps = "\n".join(f"• {step}" for step in plan.steps)
    runs = fenced(clip("\n".join(plan.commands), 1200))
    return clip(f"{head}\nConductor runs:\n{runs}\nThen:\n{steps}", MESSAGE_LIMIT)


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


# -- the lock ------------------------------------------------------------------------------

STOPS = (
    "`/release open` and `/release ship` are refused until `/release unlock`; seals and "
    "rollbacks still run."
)


def lock_text(outcome: LockOutcome) -> str:
    """The answer to ``/release lock`` (or a confirmed takeover)."""
    lock, previous = outcome.lock, outcome.previous
    reason = flat(lock.reason, LOCK_REASON_LIMIT)
    who = clip(lock.holder, NAME_LIMIT)
    if not outcome.changed:
        return f"🔒 {who} holds the lock already, for the same reason: {reason}."
    if outcome.kind is LockEventKind.CHANGED and previous is not None:
        was = flat(previous.reason, LOCK_REASON_LIMIT)
        return f"🔒 {who} still holds the lock; its reason is now: {reason} (was: {was})."
    if outcome.kind is LockEventKind.TAKEN_OVER and previous is not None:
        return (
            f"🔒 {who} took the lock over from {clip(previous.holder, NAME_LIMIT)} (held since "
            f"{stamp(previous.since)} — {flat(previous.reason, LOCK_REASON_LIMIT)}): {reason}.\n"
            + STOPS
        )
    return f"🔒 The release train is locked by {who}: {reason}.\n{STOPS}"


def takeover_prompt(asker: str, lock: LockView, reason: str) -> str:
    """The takeover question: whose lock, why and since when, and the new reason."""
    return (
        f"{asker} asks to take the release lock over.\n{lock_line(lock)}\n"
        f"New reason: {flat(reason, LOCK_REASON_LIMIT)}"
    )


def unlock_text(released: LockView, by: str) -> str:
    return (
        f"🔓 Unlocked by {clip(by, NAME_LIMIT)}: the train runs again (it was locked since "
        f"{stamp(released.since)} — {flat(released.reason, LOCK_REASON_LIMIT)})."
    )


# -- the held train ------------------------------------------------------------------------


def held_prompt(asker: str, name: str, held: Hold) -> str:
    """The question before opening over a held train: the release, its verdict and failing
    checks, or the rollback of it that stopped half way."""
    ask = f"{asker} asks to open `{flat(name, 80).replace('`', '')}` over it. Open anyway?"
    return clip(f"{hold_text(held)}\n{ask}", MESSAGE_LIMIT)


def opened_text(view: ReleaseView) -> str:
    text = f"🧩 Opened `{view.slug}`. Add reviewed tasks with `/release add`."
    held = held_over_line(view)
    return f"{text}\n{held}" if held else text


# -- /release history ----------------------------------------------------------------------


def history_entry(entry: ShippedView) -> str:
    """One shipped release: version, merge SHA, seal (and how many), who shipped it and when;
    who rolled it back, when and why."""
    release = entry.release
    seals = f" ({entry.seals} seals)" if entry.seals > 1 else ""
    parts = [
        f"{STATE_ICON[release.state]} `{release.slug}`{version(release)}",
        f"merge `{short_sha(release.merge_sha)}`" if release.merge_sha else "no merge SHA",
        seal_badge(release) + seals,
    ]
    by = f" by {clip(release.shipped_by, NAME_LIMIT)}" if release.shipped_by else ""
    at = f" {stamp(release.shipped_at)}" if release.shipped_at else ""
    parts.append(f"shipped{by}{at}")
    line = " · ".join(parts)
    if entry.in_production:
        line += " · **in production**"
    if release.state is ReleaseState.ROLLED_BACK:
        who = f" by {clip(release.rolled_back_by, NAME_LIMIT)}" if release.rolled_back_by else ""
        when = f" {stamp(release.rolled_back_at)}" if release.rolled_back_at else ""
        why = f": {flat(release.rollback_reason, 200)}" if release.rollback_reason else ""
        line += f"\n  ⏪ rolled back{who}{when}{why}"
    for redeploy in entry.redeploys[-3:]:
        how = "" if redeploy.status == "done" else f" ({redeploy.status})"
        why = f": {flat(redeploy.reason, 120)}" if redeploy.reason else ""
        line += (
            f"\n  🔁 redeployed{how} by {clip(redeploy.by, NAME_LIMIT)} {stamp(redeploy.at)}{why}"
        )
    return line


def history_text(entries: tuple[ShippedView, ...], count: int) -> str:
    """``/release history``: newest first, within one message; what does not fit is counted."""
    if not entries:
        return "Nothing has shipped yet."
    which = f"All {len(entries)}" if len(entries) < count else f"The last {len(entries)}"
    head = f"📜 {which} shipped release{'s' if len(entries) != 1 else ''}, newest first:"
    lines, size = [head], len(head)
    for shown, entry in enumerate(entries):
        line = clip(history_entry(entry), 600)
        if size + 1 + len(line) > MESSAGE_LIMIT - HISTORY_TAIL_ROOM:
            lines.append(
                f"… and {len(entries) - shown} older, not shown (one message holds 2,000 characters)."
            )
            break
        lines.append(line)
        size += 1 + len(line)
    return "\n".join(lines)
