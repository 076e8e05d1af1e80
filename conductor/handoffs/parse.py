"""Parse an agent's handoff message into a :class:`ParsedHandoff`, or refuse it line by line.
Pure and total: any ``str`` either parses or raises :class:`HandoffParseError`, nothing else."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Literal

from conductor.branches import branch_problem
from conductor.errors import ConductorError
from conductor.sizing import SIZE_HINT, parse_size
from conductor.states import Size, TaskState

__all__ = [
    "TASK_SLUG_RE",
    "HandoffParseError",
    "ParseErrorKind",
    "ParsedHandoff",
    "is_valid_slug",
    "parse_handoff",
]

# ``\Z`` rather than ``$``: ``$`` would also accept a slug followed by a newline.
TASK_SLUG_RE: Final[re.Pattern[str]] = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")

ParseErrorKind = Literal["not_a_handoff", "malformed"]

_FORMAT_HINT: Final = (
    'expected "handoff <slug> → <state>", e.g. "handoff release-model → submitted"'
)
_SLUG_RULES: Final = (
    'is not a valid task slug (lowercase letters, digits, ".", "_", "-"; '
    "up to 63 characters, starting with a letter or digit)"
)
_HEADER_HINT: Final = 'expected a "key: value" header or a blank line before the note'
_ECHO_LIMIT: Final = 60
# Numbers are short; refusing long values before any regex keeps the worst case trivially cheap.
_NUMBER_VALUE_LIMIT: Final = 64
_MAX_TOKENS: Final = 10**15
_MAX_COST: Final = Decimal(10**9)

_STATES: Final[Mapping[str, TaskState]] = MappingProxyType({s.value: s for s in TaskState})
_STATE_LIST: Final = ", ".join(s.value for s in TaskState)

_FIRST_LINE_MARKUP_RE: Final = re.compile(r"[*`]")
_HEADER_MARKUP_RE: Final = re.compile(r"\*\*|`")
_DOUBLE_UNDERSCORE_RE: Final = re.compile(r"__")
_LEADING_QUOTE_OR_HEADING_RE: Final = re.compile(r"^[\s>#]+")
_ARROW_RE: Final = re.compile(r"->|=>|[→⇒⟶]")
_ARROW: Final = "→"
_WHITESPACE_RE: Final = re.compile(r"\s+")
_HEADER_KEY_RE: Final = re.compile(r"[a-z0-9][a-z0-9 ._/-]{0,39}")
_DEPENDENCY_SPLIT_RE: Final = re.compile(r"[,\s]+")
_TOKENS_RE: Final = re.compile(
    r"~?\s*(?P<number>[0-9]+"
    r"|[0-9]{1,3}(?P<sep>[,_' \u00a0\u2009\u202f])[0-9]{3}(?:(?P=sep)[0-9]{3})*)"
)
_COST_RE: Final = re.compile(
    r"~?\s*\$?\s*(?P<number>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
    r"\s*(?:[Uu][Ss][Dd])?"
)

_KEY_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "title": "title",
        "branch": "branch",
        "kind": "kind",
        "model": "model",
        "tokens": "tokens",
        "cost": "cost",
        "size": "size",
        "depends-on": "depends-on",
        "depends on": "depends-on",
        "depends_on": "depends-on",
        "depends": "depends-on",
        "dependencies": "depends-on",
        "deps": "depends-on",
        "needs": "depends-on",
    }
)
_TEXT_LIMITS: Final[Mapping[str, int]] = MappingProxyType(
    {"title": 200, "kind": 40, "branch": 255, "model": 100}
)
_NO_DEPENDENCIES: Final = frozenset({"", "none", "-"})


def _empty_metadata() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ParsedHandoff:
    """What a handoff message asks for; ``None`` means "not given, keep what the task has"."""

    slug: str
    target: TaskState
    title: str | None = None
    branch: str | None = None
    kind: str | None = None
    depends_on: tuple[str, ...] | None = None
    model: str | None = None
    tokens: int | None = None
    cost: Decimal | None = None
    #: the developer's forecast of the task's size (sealed-bid sizing)
    size: Size | None = None
    # Excluded from the hash so the frozen object stays hashable; still compared by ``==``.
    metadata: Mapping[str, str] = field(default_factory=_empty_metadata, hash=False)
    note: str = ""

    def __post_init__(self) -> None:
        # A private read-only copy: the caller's dict can change later without touching us.
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


class HandoffParseError(ConductorError):
    """A handoff message that could not be read; ``str(error)`` says which line and why."""

    def __init__(self, line: int, expected: str, *, kind: ParseErrorKind = "malformed") -> None:
        super().__init__(f"line {line}: {expected}")
        self.line = line
        self.expected = expected
        self.kind: ParseErrorKind = kind


def is_valid_slug(s: str) -> bool:
    """Whether ``s`` is already a valid (lowercase) task slug."""
    return TASK_SLUG_RE.match(s) is not None


def _quote(value: str) -> str:
    """Echo a user value safely: short, double-quoted, no control characters or lone surrogates."""
    if len(value) > _ECHO_LIMIT:
        value = value[: _ECHO_LIMIT - 1] + "…"
    shown = "".join(ch if ch.isprintable() else "\ufffd" for ch in value)
    return f'"{shown}"'


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "._-"


def _strip_markup(text: str, markup: re.Pattern[str]) -> str:
    """Drop ``markup`` everywhere and ``__`` where it pairs up as emphasis.

    Slugs may contain ``__`` (``a__b``, ``x__``), so ``__`` goes only when an opener (not after a
    word character) is later closed by a closer (not before one), as markdown would render it.
    """
    text = markup.sub("", text)
    if "__" not in text:
        return text
    cuts: list[int] = []
    opener: int | None = None
    for match in _DOUBLE_UNDERSCORE_RE.finditer(text):
        start, end = match.span()
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if opener is not None and not before.isspace() and not _is_word_char(after):
            cuts += (opener, start)
            opener = None
        elif opener is None and not _is_word_char(before) and not after.isspace():
            opener = start
    if not cuts:
        return text
    pieces: list[str] = []
    previous = 0
    for cut in cuts:
        pieces.append(text[previous:cut])
        previous = cut + 2
    pieces.append(text[previous:])
    return "".join(pieces)


def _normalise_slug(raw: str) -> str | None:
    # ASCII first: "\u212a" (Kelvin sign) lowercases to "k" and must not sneak in as a slug.
    if not raw.isascii():
        return None
    slug = raw.lower()
    return slug if is_valid_slug(slug) else None


def _is_arrow(token: str) -> bool:
    return token == _ARROW or token.lower() == "to"


def _starts_with_handoff_word(line: str) -> bool:
    head = line[:7]
    if not (head.isascii() and head.lower() == "handoff"):
        return False
    return len(line) == 7 or line[7] == ":" or line[7].isspace()


def _parse_first_line(line: str, number: int) -> tuple[str, TaskState]:
    # Arrows first, so emphasis closing right before an arrow (``__x__->y``) is seen as closing.
    text = _strip_markup(_ARROW_RE.sub(f" {_ARROW} ", line), _FIRST_LINE_MARKUP_RE)
    text = _LEADING_QUOTE_OR_HEADING_RE.sub("", text, count=1)
    if not _starts_with_handoff_word(text):
        raise HandoffParseError(number, _FORMAT_HINT, kind="not_a_handoff")
    rest = text[7:].removeprefix(":")
    tokens = rest.split()

    if not tokens or tokens[0] == _ARROW:
        raise HandoffParseError(number, f'missing the task slug after "handoff"; {_FORMAT_HINT}')
    raw_slug = tokens[0]
    slug = _normalise_slug(raw_slug)
    if slug is None:
        raise HandoffParseError(number, f"{_quote(raw_slug)} {_SLUG_RULES}")

    after = tokens[1:]
    if after and _is_arrow(after[0]):
        after = after[1:]
    elif len(after) > 1 and after[0].lower() not in _STATES:
        raise HandoffParseError(
            number, f"unexpected {_quote(after[0])} between the slug and the state; {_FORMAT_HINT}"
        )
    if not after:
        raise HandoffParseError(
            number, f"missing the target state after {_quote(raw_slug)}; {_FORMAT_HINT}"
        )
    raw_state, extra = after[0], after[1:]
    state = _STATES.get(raw_state.lower()) if raw_state.isascii() else None
    if state is None:
        raise HandoffParseError(
            number, f"unknown state {_quote(raw_state)}; expected one of {_STATE_LIST}"
        )
    if extra:
        raise HandoffParseError(
            number,
            f"unexpected {_quote(' '.join(extra))} after the state {_quote(raw_state)}; "
            f"{_FORMAT_HINT}",
        )
    return slug, state


def _split_header(line: str, number: int) -> tuple[str, str]:
    """Return the normalised key and the cleaned value of one header line."""
    body = line.lstrip()
    if body[:2] in ("- ", "* "):
        body = body[2:]
    raw_key, colon, raw_value = _strip_markup(body, _HEADER_MARKUP_RE).partition(":")
    key = _WHITESPACE_RE.sub(" ", raw_key).strip().lower()
    # Anything that does not look like a short key is most likely a note missing its blank line.
    if not colon or not key.isascii() or _HEADER_KEY_RE.fullmatch(key) is None:
        raise HandoffParseError(number, f"{_HEADER_HINT}, got {_quote(line.strip())}")
    return key, raw_value.strip()


def _parse_text(name: str, value: str, number: int) -> str:
    if not value:
        raise HandoffParseError(number, f"{name} is empty; give a value or leave the line out")
    if name == "branch" and any(ch.isspace() for ch in value):
        raise HandoffParseError(number, f"branch must not contain spaces, got {_quote(value)}")
    if name == "branch" and (problem := branch_problem(value)) is not None:
        raise HandoffParseError(
            number, f"branch {_quote(value)} is not a valid git branch name: {problem}"
        )
    limit = _TEXT_LIMITS[name]
    if len(value) > limit:
        raise HandoffParseError(
            number, f"{name} is too long ({len(value)} characters; at most {limit})"
        )
    return value


def _parse_tokens(value: str, number: int) -> int:
    match = _TOKENS_RE.fullmatch(value) if len(value) <= _NUMBER_VALUE_LIMIT else None
    if match is None:
        raise HandoffParseError(
            number, f"tokens must be a whole number like 52,276,348, got {_quote(value)}"
        )
    sep = match["sep"]
    digits = match["number"].replace(sep, "") if sep else match["number"]
    tokens = int(digits)
    if tokens >= _MAX_TOKENS:
        raise HandoffParseError(
            number, f"tokens must be less than {_MAX_TOKENS:,}, got {_quote(value)}"
        )
    return tokens


def _parse_cost(value: str, number: int) -> Decimal:
    match = _COST_RE.fullmatch(value) if len(value) <= _NUMBER_VALUE_LIMIT else None
    if match is None:
        raise HandoffParseError(number, f"cost must be an amount like $33.96, got {_quote(value)}")
    # The pattern admits only ASCII digits, so NaN, Infinity and exponents never reach Decimal.
    cost = Decimal(match["number"].replace(",", ""))
    if cost >= _MAX_COST:
        raise HandoffParseError(
            number, f"cost must be less than ${_MAX_COST:,}, got {_quote(value)}"
        )
    return cost


def _parse_size(value: str, number: int) -> Size:
    size = parse_size(value) if len(value) <= _ECHO_LIMIT else None
    if size is None:
        raise HandoffParseError(number, f"size must be {SIZE_HINT}, got {_quote(value)}")
    return size


def _parse_dependencies(value: str, number: int, slug: str) -> tuple[str, ...]:
    if value.lower() in _NO_DEPENDENCIES:
        return ()
    found: dict[str, None] = {}
    for raw in _DEPENDENCY_SPLIT_RE.split(value):
        if not raw:
            continue
        dependency = _normalise_slug(raw)
        if dependency is None:
            raise HandoffParseError(number, f"depends-on: {_quote(raw)} {_SLUG_RULES}")
        if dependency == slug:
            raise HandoffParseError(number, f"depends-on: {_quote(slug)} cannot depend on itself")
        found[dependency] = None
    return tuple(found)


def parse_handoff(text: str) -> ParsedHandoff:
    """Parse one handoff message; raise :class:`HandoffParseError` if it is not a valid one."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    first = next((i for i, line in enumerate(lines) if line), None)
    if first is None:
        raise HandoffParseError(1, f"the message is empty; {_FORMAT_HINT}", kind="not_a_handoff")
    slug, target = _parse_first_line(lines[first], first + 1)

    texts: dict[str, str] = {}
    depends_on: tuple[str, ...] | None = None
    tokens: int | None = None
    cost: Decimal | None = None
    size: Size | None = None
    metadata: dict[str, str] = {}
    seen_on: dict[str, int] = {}
    index = first + 1
    while index < len(lines) and lines[index]:
        number = index + 1
        key, value = _split_header(lines[index], number)
        name = _KEY_ALIASES.get(key)
        slot = key if name is None else name
        if slot in seen_on:
            shown = _quote(key) if name is None else name
            raise HandoffParseError(
                number, f"{shown} is given twice (first on line {seen_on[slot]})"
            )
        seen_on[slot] = number
        if name is None:
            metadata[key] = value
        elif name == "depends-on":
            depends_on = _parse_dependencies(value, number, slug)
        elif name == "tokens":
            tokens = _parse_tokens(value, number)
        elif name == "cost":
            cost = _parse_cost(value, number)
        elif name == "size":
            size = _parse_size(value, number)
        else:
            texts[name] = _parse_text(name, value, number)
        index += 1

    note_lines = lines[index:]
    start = next((i for i, line in enumerate(note_lines) if line), len(note_lines))
    end = len(note_lines)
    while end > start and not note_lines[end - 1]:
        end -= 1

    return ParsedHandoff(
        slug=slug,
        target=target,
        title=texts.get("title"),
        branch=texts.get("branch"),
        kind=texts.get("kind"),
        depends_on=depends_on,
        model=texts.get("model"),
        tokens=tokens,
        cost=cost,
        size=size,
        metadata=metadata,
        note="\n".join(note_lines[start:end]),
    )
