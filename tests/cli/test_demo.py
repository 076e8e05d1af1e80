"""``conductor demo``: the whole train offline (simcord, the sample app, real Chromium), run as
a user runs it, and what it says when something it needs is missing or a step goes wrong."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli.demo import script as demo
from smoke.config import default_chromium
from smoke.runner import chromium_problem
from tests.helpers import clean_env, run_conductor

needs_chromium = pytest.mark.skipif(
    chromium_problem(default_chromium()) is not None,
    reason=f"the demo seals in real Chromium: {default_chromium()} is missing (make demo installs it)",
)


@needs_chromium
def test_conductor_demo_plays_the_whole_train(tmp_path: Path) -> None:
    # Whatever the environment holds, the demo reads none of it: a token, a broken config
    # file, a reviewer role nobody has and a database URL that cannot be opened.
    (tmp_path / "conductor.toml").write_text("this is [not toml", encoding="utf-8")
    env = clean_env(
        tmp_path,
        CONDUCTOR_DISCORD_TOKEN="NzA5.fake-token-value.do-not-use",
        CONDUCTOR_CONFIG=str(tmp_path / "conductor.toml"),
        CONDUCTOR_REVIEWER_ROLE="Nobody",
        CONDUCTOR_DATABASE_URL="sqlite+aiosqlite:////nonexistent/dir/x.db",
        CONDUCTOR_REQUIRED_APPROVALS="7",
    )
    # an outer bound past the demo's own deadline, so that the demo says why it stopped
    result = run_conductor(tmp_path, "demo", env=env, timeout=demo.DEADLINE_SECONDS + 60)
    out = result.stdout
    assert result.returncode == 0, f"{result.stderr}\n{out[-3000:]}"
    assert result.stderr == ""

    # agents' handoffs, acknowledged, one refused with the reason, and the review requests
    assert "#handoffs  machoke (bot): handoff core → designed" in out
    assert "#handoffs  claude (webhook): handoff ui → building" in out
    assert "depends-on: core" in out
    assert "#handoffs  Conductor reacted ✅" in out
    assert "reviewed is reached by teammates' ✅ approvals, never by a handoff" in out
    assert "#reviews  Conductor: 📨 **Review** `core` — Core release model" in out

    # the author's own ✅ does not count; two others make the task reviewed
    own = out.index("#reviews  carl reacted ✅ on “Conductor: 📨 **Review** `docs`")
    after_own = out[own:].splitlines()
    assert "it does not count: carl is the author" in after_own[1]
    assert "✅ **Reviewed** — approved by alex, olga." in out

    # both releases, opened, assembled and shipped by olga through slash commands
    first = re.search(r"Opened `(\d{4}-\d{2}-\d{2}-train)`", out)
    second = re.search(r"Opened `(\d{4}-\d{2}-\d{2}-hotfix)`", out)
    assert first and second, out
    assert "#general  olga ▸ /release ship" in out
    assert "(only olga sees this): Task `ui` can't join" in out

    # the first seal: green, in the release thread's notes
    notes_1 = f"#release-notes › {first[1]}  Conductor: 📦 **Release notes — `{first[1]}` v1**"
    assert notes_1 in out
    assert (
        out.split(notes_1, 1)[1].splitlines()[1] == "    🟢 Smoke seal: green — 6/6 checks passed"
    )

    # the second: red with the failing checks named, and the ping with the rollback command
    thread_2 = f"#release-notes › {second[1]}  Conductor: "
    seal_line = out.split(thread_2 + "📦", 1)[1].splitlines()[1]
    assert seal_line.startswith("    🔴 Smoke seal: red — 2 of 6 failed: /signin (selector form"), (
        seal_line
    )
    assert "/tasks (status 500" in seal_line
    ping = out.split(thread_2 + "🚨", 1)[1].splitlines()
    assert ping[0].startswith(" @olga @Operators the smoke seal of `")
    assert "is **red**" in ping[0]
    assert ping[2] == "    ```" and ping[4] == "    ```"
    # the real merge commit: main on the local origin was fast-forwarded to the RC
    assert re.fullmatch(rf"    git revert -m 1 [0-9a-f]{{40}} && bin/deploy {second[1]}", ping[3])
    # with the screenshot of each failed page, attached
    assert ping[5:8] == [
        "    📸 2 screenshots of the failed pages attached.",
        "    📎 02-signin.png",
        "    📎 03-tasks.png",
    ]

    # git, the tests, the deploy and the health gate before the flip
    assert f"🌿 RC `release/{first[1]}` at `" in out and "(3 merges)" in out
    assert "🧪 Tests passed on the RC head in " in out
    assert "✅ deploy: `main` fast-forwarded to `" in out and "; deployed as v1 · " in out
    assert "✅ health gate: healthy after 1 check" in out
    assert "production says: Running v1 (" in out
    assert "<@" not in out  # every mention is shown by name

    # fixed and re-sealed: green again
    assert f"🔁 Re-sealed `{second[1]}` v2 by olga (was 🔴 red):" in out
    assert f"🚀 `{second[1]}` v2 — shipped 🟢" in out  # the board's badge

    # the board is shown as text
    assert "#deployments  Conductor: ▌ 🚂 Deployments" in out

    # finished, within its own deadline (past it the demo stops, exit 1). How quick it is
    # depends on the machine: 14 s beside two CPU hogs, 33 s beside the whole suite as well.
    finished = re.search(r"✔ Demo finished in (\d+\.\d) s", out)
    assert finished, out[-500:]
    assert float(finished[1]) < demo.DEADLINE_SECONDS, finished[0]


def test_without_simcord_it_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['simcord'] = None; "
        "from cli.main import main; sys.argv = ['conductor', 'demo']; main()"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", code],
        env=clean_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: `conductor demo` needs simcord, a dev dependency: "
        "pip install 'conductor[dev]' (or run `make demo`)"
    )
    assert result.stdout == ""


def test_without_chromium_it_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo, "default_chromium", lambda: "/nonexistent/chromium")
    assert demo.main() == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Chromium not found at /nonexistent/chromium")
    assert err.endswith(
        "install Debian's Chromium (apt-get install chromium-headless-shell) or run `make demo`"
    )
    assert "\n" not in err


@needs_chromium
def test_a_step_that_goes_wrong_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(self: demo.Script) -> None:
        self.step = "the handoffs"
        raise demo.DemoFailure(f"{self.step}: task core is building,\nexpected submitted")

    monkeypatch.setattr(demo.Script, "play", broken)
    assert demo.main() == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "error: demo failed: the handoffs: task core is building, expected submitted"
    )
    assert "Demo finished" not in captured.out
