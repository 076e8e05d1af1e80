"""Git branch names as agents give them: untrusted text. The rules of ``git check-ref-format
--branch``, checked without running git, so a handoff naming a hostile branch is refused with
the reason before the name gets anywhere near a command line (where ``-x`` or
``--upload-pack=…`` would read as an option)."""

from __future__ import annotations

_FORBIDDEN = {
    " ": "a space",
    "~": "~",
    "^": "^",
    ":": ":",
    "?": "?",
    "*": "*",
    "[": "[",
    "\\": "\\",
}


def branch_problem(name: str) -> str | None:
    """Why ``name`` is not a branch name git would accept, or None when it is."""
    if not name:
        return "it is empty"
    if name.startswith("-"):
        return "it starts with '-' (it would read as an option)"
    for ch in name:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return "it contains a control character"
        if ch in _FORBIDDEN:
            return f"it contains {_FORBIDDEN[ch]}"
    if ".." in name:
        return "it contains '..'"
    if "@{" in name:
        return "it contains '@{'"
    if name in {"@", "HEAD"}:
        return f"'{name}' is reserved"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "it has an empty path component ('/' at an end, or '//')"
    if name.endswith("."):
        return "it ends with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return "a path component starts with '.'"
        if part.endswith(".lock"):
            return "a path component ends with '.lock'"
    return None
