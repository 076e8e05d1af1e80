"""Branch names from handoffs are untrusted: the rules match ``git check-ref-format --branch``
itself, and a handoff naming a hostile branch is refused with the reason."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conductor.branches import branch_problem
from conductor.handoffs.parse import HandoffParseError, parse_handoff

GIT = shutil.which("git") or "git"
HOSTILE = [
    "-x",
    "--upload-pack=touch /tmp/pwned",
    "--output=/etc/passwd",
    "-",
    "a..b",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[b",
    "a\\b",
    "a\x00b",
    "a\x1bb",
    "a\x7fb",
    "a@{1}",
    "HEAD",
    "/a",
    "a/",
    "a//b",
    "a.",
    ".hidden",
    "a/.b",
    "x.lock",
    "a/b.lock/c",
]
FINE = ["feat/release-model", "fix-123", "release/2026-06-20-x", "é/ok", "a$b", "a;b", "UPPER"]


def git_accepts(name: str) -> bool:
    done = subprocess.run(  # noqa: S603 - git, the name as one argument, never a shell
        [GIT, "check-ref-format", "--branch", name], capture_output=True, check=False
    )
    return done.returncode == 0


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_with_a_reason(name: str) -> None:
    assert branch_problem(name) is not None
    if "\x00" not in name:  # an argv cannot carry NUL
        assert not git_accepts(name)


@pytest.mark.parametrize("name", FINE)
def test_ordinary_names_pass(name: str) -> None:
    assert branch_problem(name) is None
    assert git_accepts(name)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab-./@{}~^:?*[\\ .lockHEAD\t"), max_size=12))
def test_the_rules_agree_with_git(name: str) -> None:
    if name == "@":  # git resolves a lone @ as HEAD's branch; a handoff may not name it
        assert branch_problem(name) is not None
        return
    assert (branch_problem(name) is None) == git_accepts(name), name


@pytest.mark.parametrize(
    ("branch", "reason"),
    [
        ("--upload-pack=evil", "it starts with '-' (it would read as an option)"),
        ("feat/../main", "it contains '..'"),
        ("x.lock", "a path component ends with '.lock'"),
    ],
)
def test_a_handoff_naming_a_hostile_branch_is_refused(branch: str, reason: str) -> None:
    with pytest.raises(HandoffParseError) as refused:
        parse_handoff(f"handoff t → building\nbranch: {branch}")
    assert refused.value.line == 2
    assert f"is not a valid git branch name: {reason}" in str(refused.value)
