"""Tests for the handoff parser: exact results, exact refusals, and properties under fuzzing."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conductor.branches import branch_problem
from conductor.errors import ConductorError
from conductor.handoffs.parse import (
    TASK_SLUG_RE,
    HandoffParseError,
    ParsedHandoff,
    is_valid_slug,
    parse_handoff,
)
from conductor.states import TaskState
from tests.helpers import examples

S = TaskState
HINT = 'expected "handoff <slug> → <state>", e.g. "handoff release-model → submitted"'
SLUG_RULES = (
    'is not a valid task slug (lowercase letters, digits, ".", "_", "-"; '
    "up to 63 characters, starting with a letter or digit)"
)
HEADER_HINT = 'expected a "key: value" header or a blank line before the note'
STATES = "created, designed, building, submitted, reviewed, assembled, shipped"

FULL_EXAMPLE = """handoff release-model → submitted
title: Release model + task links
branch: feat/release-model
kind: feature
depends-on: deploy-foundation, task-board
model: claude-opus-4-8
tokens: 52,276,348
cost: $33.96

Release model foundation (singleton + task links + state machine). 795/0/0 green."""

FULL_EXPECTED = ParsedHandoff(
    slug="release-model",
    target=S.SUBMITTED,
    title="Release model + task links",
    branch="feat/release-model",
    kind="feature",
    depends_on=("deploy-foundation", "task-board"),
    model="claude-opus-4-8",
    tokens=52_276_348,
    cost=Decimal("33.96"),
    note="Release model foundation (singleton + task links + state machine). 795/0/0 green.",
)


def rm(**fields: object) -> ParsedHandoff:
    """The expected result for the task "release-model" going to submitted, plus ``fields``."""
    base: dict[str, object] = {"slug": "release-model", "target": S.SUBMITTED}
    base.update(fields)
    return ParsedHandoff(**base)  # type: ignore[arg-type]


GOOD: list[tuple[str, str, ParsedHandoff]] = [
    ("full-example", FULL_EXAMPLE, FULL_EXPECTED),
    ("full-example-crlf", FULL_EXAMPLE.replace("\n", "\r\n"), FULL_EXPECTED),
    ("full-example-lone-cr", FULL_EXAMPLE.replace("\n", "\r"), FULL_EXPECTED),
    (
        "full-example-trailing-spaces",
        "\n".join(line + " \t " for line in FULL_EXAMPLE.split("\n")),
        FULL_EXPECTED,
    ),
    ("leading-blank-lines", "\n  \n\t\nhandoff release-model → submitted", rm()),
    ("bold-and-backticks", "**handoff** `release-model` → **submitted**", rm()),
    ("underscore-bold-and-italic", "__handoff__ *release-model* -> __submitted__", rm()),
    ("arrow-unicode", "handoff release-model → submitted", rm()),
    ("arrow-ascii", "handoff release-model -> submitted", rm()),
    ("arrow-fat", "handoff release-model => submitted", rm()),
    ("arrow-double", "handoff release-model ⇒ submitted", rm()),
    ("arrow-long", "handoff release-model ⟶ submitted", rm()),
    ("arrow-word-to", "handoff release-model to submitted", rm()),
    ("arrow-word-TO", "handoff release-model TO submitted", rm()),
    ("arrow-touching-unicode", "handoff release-model→submitted", rm()),
    ("arrow-touching-ascii", "handoff release-model->submitted", rm()),
    ("no-arrow", "handoff release-model submitted", rm()),
    ("upper-case", "HANDOFF RELEASE-MODEL → SUBMITTED", rm()),
    ("colon-after-handoff", "Handoff: release-model -> submitted", rm()),
    ("heading-and-quote", "> ## **Handoff:** `release-model` ⟶ submitted", rm()),
    ("extra-spaces", "   handoff    release-model   →    submitted   ", rm()),
    ("every-state-shipped", "handoff release-model → shipped", rm(target=S.SHIPPED)),
    ("state-created", "handoff a → created", ParsedHandoff(slug="a", target=S.CREATED)),
    (
        "slug-with-dots-underscores",
        "handoff v1.2_fix-x → building",
        ParsedHandoff(slug="v1.2_fix-x", target=S.BUILDING),
    ),
    (
        "tokens-separators",
        "handoff release-model → submitted\ntokens: 52 276 348",
        rm(tokens=52_276_348),
    ),
    ("tokens-underscore", "handoff release-model → submitted\ntokens: ~1_000", rm(tokens=1000)),
    ("tokens-apostrophe", "handoff release-model → submitted\ntokens: 1'000'000", rm(tokens=10**6)),
    (
        "tokens-thin-space",
        "handoff release-model → submitted\ntokens: 12\u2009345",
        rm(tokens=12345),
    ),
    ("tokens-plain-zero", "handoff release-model → submitted\ntokens: 0", rm(tokens=0)),
    (
        "cost-dollar",
        "handoff release-model → submitted\ncost: $1,204.50",
        rm(cost=Decimal("1204.50")),
    ),
    ("cost-approx", "handoff release-model → submitted\ncost: ~$33.96", rm(cost=Decimal("33.96"))),
    ("cost-usd", "handoff release-model → submitted\ncost: 12.5 USD", rm(cost=Decimal("12.5"))),
    (
        "cost-many-decimals",
        "handoff release-model → submitted\ncost: 0.123456",
        rm(cost=Decimal("0.123456")),
    ),
    ("depends-none", "handoff release-model → submitted\ndepends-on: none", rm(depends_on=())),
    ("depends-dash", "handoff release-model → submitted\ndeps: -", rm(depends_on=())),
    ("depends-empty", "handoff release-model → submitted\ndepends on:", rm(depends_on=())),
    (
        "depends-aliases-dedupe-and-case",
        "handoff release-model → submitted\nDependencies: B, a  b,A\tc",
        rm(depends_on=("b", "a", "c")),
    ),
    ("depends-needs", "handoff release-model → submitted\nneeds: x y", rm(depends_on=("x", "y"))),
    (
        "markdown-headers-and-bullets",
        "handoff release-model → submitted\n"
        "- **Title:** The `thing`\n* __Branch__: `feat/x`\n  **kind**: fix\n__model:__ m__",
        rm(title="The thing", branch="feat/x", kind="fix", model="m__"),
    ),
    (
        "unknown-keys-to-metadata",
        "handoff release-model → submitted\nPR: https://example.com/pr/1\nReview  URL:  x \nnotes:",
        rm(metadata={"pr": "https://example.com/pr/1", "review url": "x", "notes": ""}),
    ),
    (
        "note-several-paragraphs",
        "handoff release-model → submitted\ntitle: T\n\n\n\n"
        "First para.\n  indented line\n\n\nSecond para.\n\n\n",
        rm(title="T", note="First para.\n  indented line\n\n\nSecond para."),
    ),
    (
        "note-without-headers",
        "handoff release-model → submitted\n\nJust a note.",
        rm(note="Just a note."),
    ),
    (
        "header-only-no-note",
        "handoff release-model → submitted\ntitle: Only headers\nmodel: m1",
        rm(title="Only headers", model="m1"),
    ),
    (
        "header-line-after-blank-is-note",
        "handoff release-model → submitted\n\ntitle: not a header",
        rm(note="title: not a header"),
    ),
    (
        "title-with-colon",
        "handoff release-model → submitted\ntitle: Fix: the thing: again",
        rm(title="Fix: the thing: again"),
    ),
    ("slug-word-to", "handoff to to reviewed", ParsedHandoff(slug="to", target=S.REVIEWED)),
    (
        "underscores-in-slugs-are-not-markup",
        "__handoff__ a__b__ -> __reviewed__\ndepends-on: x__, y.__z",
        ParsedHandoff(slug="a__b__", target=S.REVIEWED, depends_on=("x__", "y.__z")),
    ),
]


@pytest.mark.parametrize(("text", "expected"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_messages(text: str, expected: ParsedHandoff) -> None:
    assert parse_handoff(text) == expected


BAD: list[tuple[str, str, int, str, str]] = [
    ("chatter", "thanks, looks good!", 1, "not_a_handoff", f"line 1: {HINT}"),
    ("chatter-handoffs-plural", "handoffs are great", 1, "not_a_handoff", f"line 1: {HINT}"),
    (
        "chatter-after-blank",
        "\n\nhello handoff x → submitted",
        3,
        "not_a_handoff",
        f"line 3: {HINT}",
    ),
    ("empty", "", 1, "not_a_handoff", f"line 1: the message is empty; {HINT}"),
    ("whitespace-only", " \r\n\t\n  ", 1, "not_a_handoff", f"line 1: the message is empty; {HINT}"),
    (
        "only-handoff",
        "handoff",
        1,
        "malformed",
        f'line 1: missing the task slug after "handoff"; {HINT}',
    ),
    (
        "arrow-no-slug",
        "handoff → submitted",
        1,
        "malformed",
        f'line 1: missing the task slug after "handoff"; {HINT}',
    ),
    (
        "missing-state",
        "handoff release-model →",
        1,
        "malformed",
        f'line 1: missing the target state after "release-model"; {HINT}',
    ),
    (
        "missing-state-no-arrow",
        "\nhandoff release-model",
        2,
        "malformed",
        f'line 2: missing the target state after "release-model"; {HINT}',
    ),
    (
        "unknown-state",
        "handoff release-model → reviewd",
        1,
        "malformed",
        f'line 1: unknown state "reviewd"; expected one of {STATES}',
    ),
    ("bad-slug", "handoff Foo! → submitted", 1, "malformed", f'line 1: "Foo!" {SLUG_RULES}'),
    (
        "bad-slug-unicode",
        "handoff ta\u0161k → submitted",
        1,
        "malformed",
        f'line 1: "ta\u0161k" {SLUG_RULES}',
    ),
    (
        "slug-too-long",
        f"handoff {'a' * 64} → submitted",
        1,
        "malformed",
        f'line 1: "{"a" * 59}…" {SLUG_RULES}',
    ),
    (
        "extra-after-state",
        "handoff x → submitted please",
        1,
        "malformed",
        f'line 1: unexpected "please" after the state "submitted"; {HINT}',
    ),
    (
        "words-between",
        "handoff release model submitted",
        1,
        "malformed",
        f'line 1: unexpected "model" between the slug and the state; {HINT}',
    ),
    (
        "header-without-colon",
        "\n\nhandoff x → submitted\ntitle: ok\nThis is my note",
        5,
        "malformed",
        f'line 5: {HEADER_HINT}, got "This is my note"',
    ),
    (
        "header-empty-key",
        "handoff x → submitted\n: value",
        2,
        "malformed",
        f'line 2: {HEADER_HINT}, got ": value"',
    ),
    (
        "header-sentence-with-colon",
        "handoff x → submitted\nDone, all green (795/0/0): see CI",
        2,
        "malformed",
        f'line 2: {HEADER_HINT}, got "Done, all green (795/0/0): see CI"',
    ),
    (
        "duplicate-key",
        "handoff x → submitted\ntitle: a\nbranch: b\nTitle: c",
        4,
        "malformed",
        "line 4: title is given twice (first on line 2)",
    ),
    (
        "duplicate-alias",
        "handoff x → submitted\ndeps: a\nneeds: b",
        3,
        "malformed",
        "line 3: depends-on is given twice (first on line 2)",
    ),
    (
        "duplicate-unknown",
        "handoff x → submitted\npr: 1\nPR: 2",
        3,
        "malformed",
        'line 3: "pr" is given twice (first on line 2)',
    ),
    (
        "bad-tokens",
        "handoff x → submitted\n\ttokens: lots",
        2,
        "malformed",
        'line 2: tokens must be a whole number like 52,276,348, got "lots"',
    ),
    (
        "negative-tokens",
        "handoff x → submitted\ntokens: -5",
        2,
        "malformed",
        'line 2: tokens must be a whole number like 52,276,348, got "-5"',
    ),
    (
        "mixed-separators-tokens",
        "handoff x → submitted\ntokens: 1,000_000",
        2,
        "malformed",
        'line 2: tokens must be a whole number like 52,276,348, got "1,000_000"',
    ),
    (
        "huge-tokens",
        "handoff x → submitted\ntokens: 1,000,000,000,000,000",
        2,
        "malformed",
        'line 2: tokens must be less than 1,000,000,000,000,000, got "1,000,000,000,000,000"',
    ),
    (
        "bad-cost",
        "handoff x → submitted\ncost: free",
        2,
        "malformed",
        'line 2: cost must be an amount like $33.96, got "free"',
    ),
    (
        "nan-cost",
        "handoff x → submitted\ncost: NaN",
        2,
        "malformed",
        'line 2: cost must be an amount like $33.96, got "NaN"',
    ),
    (
        "infinite-cost",
        "handoff x → submitted\ncost: $Infinity",
        2,
        "malformed",
        'line 2: cost must be an amount like $33.96, got "$Infinity"',
    ),
    (
        "negative-cost",
        "handoff x → submitted\ncost: -$3",
        2,
        "malformed",
        'line 2: cost must be an amount like $33.96, got "-$3"',
    ),
    (
        "huge-cost",
        "handoff x → submitted\ncost: $1,000,000,000",
        2,
        "malformed",
        'line 2: cost must be less than $1,000,000,000, got "$1,000,000,000"',
    ),
    (
        "bad-dependency",
        "handoff x → submitted\ndepends-on: a, B@d, c",
        2,
        "malformed",
        f'line 2: depends-on: "B@d" {SLUG_RULES}',
    ),
    (
        "self-dependency",
        "handoff x → submitted\ndepends-on: a, X",
        2,
        "malformed",
        'line 2: depends-on: "x" cannot depend on itself',
    ),
    (
        "branch-with-space",
        "handoff x → submitted\nbranch: feat/ my branch",
        2,
        "malformed",
        'line 2: branch must not contain spaces, got "feat/ my branch"',
    ),
    (
        "empty-title",
        "handoff x → submitted\ntitle: ****",
        2,
        "malformed",
        "line 2: title is empty; give a value or leave the line out",
    ),
    (
        "too-long-title",
        "handoff x → submitted\ntitle: " + "t" * 201,
        2,
        "malformed",
        "line 2: title is too long (201 characters; at most 200)",
    ),
    (
        "too-long-kind",
        "handoff x → submitted\nkind: " + "k" * 41,
        2,
        "malformed",
        "line 2: kind is too long (41 characters; at most 40)",
    ),
    (
        "control-chars-are-not-echoed",
        "handoff x → sub\x00mitted",
        1,
        "malformed",
        f'line 1: unknown state "sub\ufffdmitted"; expected one of {STATES}',
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "kind", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_messages(text: str, line: int, kind: str, message: str) -> None:
    with pytest.raises(HandoffParseError) as caught:
        parse_handoff(text)
    error = caught.value
    assert isinstance(error, ConductorError)
    assert (error.line, error.kind, str(error)) == (line, kind, message)
    assert error.expected == message.removeprefix(f"line {line}: ")


def test_slug_helpers() -> None:
    assert is_valid_slug("release-model")
    assert is_valid_slug("a" * 63)
    assert not is_valid_slug("a" * 64)
    assert not is_valid_slug("Release")
    assert not is_valid_slug("-x")
    assert not is_valid_slug("x\n")
    assert not is_valid_slug("")
    assert TASK_SLUG_RE.match("v1.2_x") is not None


def test_parsed_handoff_is_frozen_hashable_and_copies_metadata() -> None:
    source = {"pr": "1"}
    parsed = ParsedHandoff(slug="x", target=S.CREATED, metadata=source)
    source["pr"] = "2"
    assert parsed.metadata == {"pr": "1"}
    assert hash(parsed) == hash(ParsedHandoff(slug="x", target=S.CREATED, metadata={"pr": "1"}))
    with pytest.raises(TypeError):
        parsed.metadata["pr"] = "3"  # type: ignore[index]


@pytest.mark.parametrize(
    "text",
    [
        "handoff x → submitted\n" + "-" * 100_000,
        "handoff " + "-" * 100_000,
        "#" * 100_000,
        "handoff " + "_" * 100_000 + " → submitted",
        "handoff " + "*_`" * 33_000,
        "handoff x → submitted\ntokens: " + "1," * 50_000,
        "handoff x → submitted\ncost: " + "1," * 50_000,
        "handoff x → submitted\ndepends-on: " + "ab, " * 25_000,
        "handoff x → submitted\n" + "k: v\n" * 20_000,
        "handoff x → submitted\n" + "a" * 100_000 + ":",
        "handoff x → submitted\ntitle: " + "__a " * 25_000,
        "handoff x → submitted\nk: " + "_" * 100_000,
        "__" * 50_000,
        "handoff " + "→" * 100_000,
        "\n" * 100_000,
        "handoff x → submitted\n\n" + "note line\n" * 10_000,
    ],
    ids=lambda t: repr(t[:30]),
)
def test_large_adversarial_messages_are_fast(text: str) -> None:
    # the parser's own work: this thread's CPU time, which other work on the machine does not
    # lengthen (its wall time does)
    started = time.thread_time()
    try:
        parse_handoff(text)
    except HandoffParseError as error:
        assert len(str(error)) < 400
    assert time.thread_time() - started < 0.25


# --- hypothesis ---------------------------------------------------------------------------

ARROWS = ["→", "->", "=>", "⇒", "⟶", "to", "TO", "To"]
KNOWN_KEYS = [
    "title",
    "branch",
    "kind",
    "depends-on",
    "depends on",
    "depends_on",
    "depends",
    "dependencies",
    "deps",
    "needs",
    "model",
    "tokens",
    "cost",
]
slugs = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
line_endings = st.sampled_from(["\n", "\r\n", "\r"])

first_line_fragments = st.one_of(
    st.sampled_from(
        [
            "handoff",
            "Handoff:",
            "HANDOFF",
            "**handoff**",
            "handoffs",
            "#",
            "> ",
            "**",
            "__",
            "*",
            "`",
            "~",
            ":",
            "-",
            ">",
            "=",
            "Foo!",
            "reviewd",
            "",
            " ",
            "\t",
            "\x00",
            "\u212a",
            "\ud800",
        ]
        + ARROWS
        + [s.value for s in TaskState]
        + [s.value.upper() for s in TaskState]
    ),
    slugs,
    st.text(max_size=4),
)
random_first_lines = st.lists(first_line_fragments, max_size=8).flatmap(
    lambda parts: st.sampled_from(["", " ", "  "]).map(lambda sep: sep.join(parts))
)
gaps = st.sampled_from(["", " ", "  ", "\t"])
templated_first_lines = st.builds(
    lambda *parts: "".join(parts),
    st.sampled_from(["", "", "> ", "## ", "**", "`", "*", " "]),
    st.sampled_from(["handoff", "Handoff:", "HANDOFF", "**handoff**", "__handoff__", "handoffs"]),
    gaps.filter(bool) | gaps,
    slugs | slugs.map(str.upper) | st.sampled_from(["Foo!", "a__", "__a__", "-x", "ü", ""]),
    gaps,
    st.sampled_from([*ARROWS, "", "-->", "<-", "→→"]),
    gaps,
    st.sampled_from([*(s.value for s in TaskState), "SHIPPED", "reviewd", "", "**built**"]),
    st.sampled_from(["", "", "**", "__", "`", " please", ":", "."]),
)
first_lines = st.one_of(templated_first_lines, templated_first_lines, random_first_lines)
header_keys = st.one_of(
    st.sampled_from([*KNOWN_KEYS, "PR", "notes", "x y", "", " ", "**title**", "- title", "* kind"]),
    st.text(max_size=12),
)
header_values = st.one_of(
    st.sampled_from(
        [
            "",
            "none",
            "-",
            "52,276,348",
            "52 276 348",
            "~1_000",
            "$33.96",
            "~$1,204.50",
            "12 USD",
            "NaN",
            "Infinity",
            "-5",
            "1e5",
            "lots",
            "a, b c",
            "x",
            "B@d",
            "feat/x y",
            "`code`",
            "**bold**",
            "9" * 70,
        ]
    ),
    slugs,
    st.text(max_size=30),
)
header_lines = st.one_of(
    st.builds(
        lambda bullet, key, sep, value: f"{bullet}{key}{sep}{value}",
        st.sampled_from(["", "", "- ", "* ", "  "]),
        st.sampled_from(KNOWN_KEYS) | st.sampled_from(KNOWN_KEYS).map(str.upper),
        st.sampled_from([": ", ":", ":  "]),
        header_values,
    ),
    st.builds(
        lambda key, sep, value: f"{key}{sep}{value}",
        header_keys,
        st.sampled_from([": ", ":", " : ", "", "::", " "]),
        header_values,
    ),
)
near_handoffs = st.builds(
    lambda blanks, first, headers, gap, note, ending: ending.join(
        [*[""] * blanks, first, *headers, *[""] * gap, *note]
    ),
    st.integers(0, 2),
    first_lines,
    st.lists(header_lines, max_size=6),
    st.integers(0, 2),
    st.lists(st.text(max_size=20), max_size=3),
    line_endings,
)


# Lone surrogates, NUL, every line-break look-alike, and the characters the grammar cares about.
awkward_chars = st.one_of(
    st.characters(blacklist_categories=()),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.sampled_from("\x00\r\n\x0b\x0c\x1c\x85\u2028\u2029\u00a0 \t:→->#*_`$~,"),
)


def line_count(text: str) -> int:
    return len(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


@settings(
    max_examples=examples(10_000), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.one_of(st.text(), st.text(alphabet=st.characters(blacklist_categories=())), near_handoffs)
)
def test_parse_handoff_is_total(text: str) -> None:
    try:
        result = parse_handoff(text)
    except HandoffParseError as error:
        assert 1 <= error.line <= line_count(text)
        assert str(error).startswith(f"line {error.line}: ")
        assert error.kind in ("not_a_handoff", "malformed")
        assert len(str(error)) < 400
    else:
        assert isinstance(result, ParsedHandoff)
        assert is_valid_slug(result.slug)
        assert result.target in TaskState


# Values the renderer can write back verbatim: no line breaks, no markdown, no edge whitespace.
plain_chars = st.characters(
    blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="*`_\r\n"
)


def plain_text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return (
        st.text(plain_chars, min_size=min_size, max_size=max_size)
        .map(str.strip)
        .filter(lambda s: len(s) >= min_size)
    )


no_space_chars = st.characters(
    whitelist_categories=("L", "N", "P", "S"), blacklist_characters="*`_"
)
metadata_keys = st.from_regex(r"[a-z][a-z0-9.-]{0,15}", fullmatch=True).filter(
    lambda k: k not in KNOWN_KEYS
)
TOKEN_SEPARATORS = ["", ",", "_", "'", " ", "\u2009"]


@st.composite
def handoff_cases(draw: st.DrawFn) -> tuple[str, ParsedHandoff]:
    slug = draw(slugs)
    target = draw(st.sampled_from(list(TaskState)))
    title = draw(st.none() | plain_text(1, 200))
    # Any branch name git accepts (the hostile ones are refused: tests/conductor/test_branches.py).
    branch = draw(
        st.none()
        | st.text(no_space_chars, min_size=1, max_size=255).filter(
            lambda b: branch_problem(b) is None
        )
    )
    kind = draw(st.none() | plain_text(1, 40))
    model = draw(st.none() | plain_text(1, 100))
    deps = draw(st.none() | st.lists(slugs.filter(lambda d: d != slug), max_size=5))
    tokens = draw(st.none() | st.integers(0, 10**15 - 1))
    cost = draw(
        st.none()
        | st.decimals(min_value=0, max_value=Decimal("999999999.99"), places=2, allow_nan=False)
    )
    metadata = draw(st.dictionaries(metadata_keys, plain_text(0, 40), max_size=3))
    note_lines = draw(st.lists(st.text(plain_chars, max_size=30).map(str.rstrip), max_size=5))
    note = "\n".join(note_lines).strip("\n")

    headers: list[str] = []
    if title is not None:
        headers.append(f"title: {title}")
    if branch is not None:
        headers.append(f"{draw(st.sampled_from(['branch', 'Branch', '**branch**']))}: {branch}")
    if kind is not None:
        headers.append(f"- kind: {kind}")
    if model is not None:
        headers.append(f"model:{model}")
    if deps is not None:
        key = draw(st.sampled_from(KNOWN_KEYS[3:10]))
        rendered = ", ".join(deps) if deps else draw(st.sampled_from(["none", "-", "", "None"]))
        headers.append(f"{key}: {rendered}")
    if tokens is not None:
        sep = draw(st.sampled_from(TOKEN_SEPARATORS))
        headers.append(f"tokens: {draw(st.sampled_from(['', '~']))}{tokens:,}".replace(",", sep))
    if cost is not None:
        amount = f"{cost:,f}" if draw(st.booleans()) else f"{cost:f}"
        prefix = draw(st.sampled_from(["", "$", "~$", "~"]))
        suffix = draw(st.sampled_from(["", " USD", "usd"]))
        headers.append(f"cost: {prefix}{amount}{suffix}")
    headers.extend(f"{k}: {v}" for k, v in metadata.items())
    headers = draw(st.permutations(headers))

    arrow = draw(st.sampled_from(ARROWS))
    first = f"handoff {slug} {arrow} {target.value}"
    if draw(st.booleans()):
        first = first.upper()
    lines = [first, *headers]
    if note:
        lines += ["", note]
    text = draw(line_endings).join(lines)

    expected = ParsedHandoff(
        slug=slug,
        target=target,
        title=title,
        branch=branch,
        kind=kind,
        depends_on=None if deps is None else tuple(dict.fromkeys(deps)),
        model=model,
        tokens=tokens,
        cost=cost,
        metadata=metadata,
        note=note,
    )
    return text, expected


@settings(max_examples=examples(2_000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(handoff_cases())
def test_round_trip(case: tuple[str, ParsedHandoff]) -> None:
    text, expected = case
    assert parse_handoff(text) == expected
