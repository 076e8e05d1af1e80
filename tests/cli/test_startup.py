"""``conductor --version``, and a start without discord.py's voice warnings."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest

import cli.main as cli_main
from tests.helpers import ROOT, clean_env, run_conductor, run_python


def test_version_is_the_installed_distribution_s(tmp_path: Path) -> None:
    done = run_conductor(tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"conductor {importlib.metadata.version('conductor')}\n"
    assert done.stderr == ""


def test_version_from_a_checkout_never_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert cli_main._version_line() == f"conductor {version} (from the checkout at {ROOT})"


VOICE = "voice will NOT be supported"
STARTUP = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.WARNING, stream=sys.stderr)\n"
    "import discord\n"
    "from cli.run import without_voice_warnings\n"
    "{quiet}\n"
    "discord.Client(intents=discord.Intents.none())\n"
    "logging.getLogger('discord.client').warning('another warning')\n"
)


@pytest.mark.parametrize("quiet", [True, False], ids=["run", "without-the-switch"])
def test_the_client_is_built_without_voice_warnings_and_others_still_show(
    tmp_path: Path, quiet: bool
) -> None:
    script = STARTUP.format(quiet="without_voice_warnings()" if quiet else "")
    done = run_python(script, env=clean_env(tmp_path, PYTHONPATH=str(ROOT)))
    assert "another warning" in done.stderr
    if quiet:
        assert VOICE not in done.stderr, done.stderr
    else:  # what `conductor run` printed before: PyNaCl and davey are not installed here
        assert done.stderr.count(VOICE) == 2, done.stderr
