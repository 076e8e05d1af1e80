"""A run (a ship, a rollback, a redeploy) in a process of its own, for the crash tests:
``python -m tests.conductor.releases.ship_worker CONFIG`` starts a run of the kind named by its
mode, or resumes, on a real SQLite file and a real clone, with a green (or red) smoke runner
and notes kept in a JSON-lines file. It kills
itself with SIGKILL at the checkpoint named in the config (``deploy:done``, ``notes:sent``, …):
no ``finally``, no flush, as a power cut would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conductor.bootstrap import Conductor, bootstrap
from conductor.errors import ConductorError
from conductor.releases.runs.driver import RunRequest
from conductor.releases.runs.sink import AlertAction, PostedNotes
from conductor.releases.runs.store import Runs
from conductor.seals.evidence import Attachment
from conductor.states import RunKind
from conductor.views import ReleaseView
from store.db import Database
from tests.helpers import GUILD, OPERATOR, TEST_APP, FakeRunner


class FileNotes:
    """A NotesSink whose thread is a JSON-lines file shared by every process of a test."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def _append(self, entry: dict[str, Any]) -> int:
        number = len(self._lines()) + 1
        with self.path.open("a") as sink:
            sink.write(json.dumps({"id": number, **entry}) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
        return number

    async def post(
        self,
        guild_id: int,
        release: ReleaseView,
        messages: Sequence[str],
        *,
        reply_to: object | None = None,
    ) -> PostedNotes | None:
        first = 0
        for text in messages:
            number = self._append({"kind": "post", "release": release.slug, "text": text})
            first = first or number
        return PostedNotes(first, f"file://{first}", release.slug)

    async def find(self, guild_id: int, release: ReleaseView, marker: str) -> PostedNotes | None:
        for entry in self._lines():
            if marker in entry["text"]:
                return PostedNotes(entry["id"], f"file://{entry['id']}", release.slug)
        return None

    async def mentions(self, guild_id: int, user_id: int | None) -> list[str]:
        return [f"<@{user_id}>"] if user_id is not None else []

    async def ping(
        self,
        guild_id: int,
        posted: PostedNotes,
        text: str,
        *,
        user_id: int | None,
        attachments: Sequence[Attachment] = (),
        action: AlertAction | None = None,
    ) -> None:
        entry = {"kind": "ping", "text": text}
        if action is not None:
            entry["action"] = f"{action.kind}:{action.release_slug}"
        self._append(entry)

    def changed(self, guild_id: int) -> None:
        pass


class RedRunner(FakeRunner):
    """Every seal red: the alert is owed at every point of every run."""

    async def run(self, app: Any, *, on_check: Any = None) -> Any:
        self.then({"/": "status 500"})
        return await super().run(app, on_check=on_check)


def build(config: dict[str, Any], *, checkpoint: Any = None) -> Conductor:
    """The domain a worker (and the test, in its own process) builds from ``config``."""
    db = Database(config["db_url"])
    return bootstrap(
        database=db,
        runner=RedRunner() if config.get("red") else FakeRunner(),
        notes=FileNotes(Path(config["notes"])),
        app={**TEST_APP, "production_url": config["production_url"]},
        git={"path": config["clone"]},
        deploy={
            "command": config["deploy"],
            "health_timeout": config.get("health_timeout", 60),
            "health_interval": 0.05,
            "log_dir": config["logs"],
            "write": [config["outbox"]] if config.get("outbox") else [],
        },
        # a killed worker's runs are taken up at once (its owner is gone), whatever the lease;
        # a live one keeps its run however busy the machine
        runs=Runs(db, lease_s=config.get("lease_s", 30.0)),
        checkpoint=checkpoint,
    )


async def main(config: dict[str, Any]) -> dict[str, Any]:
    kill_at = config.get("kill_at")

    def checkpoint(point: str) -> None:
        if point == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    domain = build(config, checkpoint=checkpoint)
    if config.get("pidfile"):  # where a git hook finds this process to kill it mid-push
        Path(config["pidfile"]).write_text(str(os.getpid()))
    go = config.get("go")
    # the race: every worker starts at once (a file another process writes: no event to await)
    while go and not Path(go).exists():  # noqa: ASYNC110
        await asyncio.sleep(0.002)
    try:
        if config["mode"] != "resume":
            kind = RunKind(config["mode"])
            request = RunRequest(reason="crash test")
            try:
                outcome = await domain.runs.start(kind, GUILD, OPERATOR, request=request)
            except ConductorError as refused:
                return {"refused": str(refused)}
            return {"stopped": outcome.stopped, "state": outcome.release.state.value}
        taken = 0
        deadline = time.monotonic() + 120  # an outer bound on the dead process's lease
        while time.monotonic() < deadline:
            taken += await domain.runs.resume(GUILD)
            if taken or not await domain.runs.runs.unfinished(GUILD):
                break
            await asyncio.sleep(0.1)
        posted = await domain.publisher.post_owed_notes(GUILD)
        return {"taken": taken, "posted": posted}
    finally:
        await domain.db.dispose()


if __name__ == "__main__":
    result = asyncio.run(main(json.loads(sys.argv[1])))
    print(json.dumps(result))  # noqa: T201 - the test reads it
