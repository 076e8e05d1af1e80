"""The database could not take a unit of work: busy, full, read-only, broken, its file gone, or
its server out of reach.

``Database.write()`` and ``read()`` turn SQLite's and PostgreSQL's errors into these, so the
layers above can say what happened in plain words (``message``) instead of "something went
wrong". The unit of work that met one was rolled back: nothing in it was written.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from sqlalchemy.exc import DBAPIError

Reason = Literal["busy", "full", "read-only", "broken", "gone", "unreachable"]

# SQLite's primary result codes (the low byte of an extended code)
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN = 5, 6, 8, 10, 11, 13, 14
#: SQLITE_READONLY_DBMOVED: the file was unlinked or renamed while open
_READONLY_DBMOVED = _READONLY | (4 << 8)


class DatabaseUnavailable(Exception):
    """The database cannot take this unit of work now; nothing in it was written.
    ``message`` is for the user; ``detail`` (the database's own words) is for the log."""

    reason: ClassVar[Reason]
    #: what is wrong, in a user's words (no trailing full stop)
    problem: ClassVar[str]
    #: what has to happen before trying again
    advice: ClassVar[str]

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail or self.reason

    @property
    def message(self) -> str:
        return f"⛔ {self.problem}. Nothing was changed: {self.advice}."

    def __str__(self) -> str:
        return self.message

    def again(self) -> Self:
        """A fresh error of the same kind (raising one instance again and again would grow
        its traceback)."""
        return type(self)(self.detail)


class DatabaseBusy(DatabaseUnavailable):
    reason = "busy"
    problem = "Conductor's database is busy: another process holds its write lock"
    advice = "try again in a moment"


class DatabaseCrowded(DatabaseBusy):
    """Every connection of the pool was in use for the whole pool timeout (many requests at
    once): busy, but not because of another process's lock."""

    problem = "Conductor's database has no free connection: every one is in use"


class DatabaseFull(DatabaseUnavailable):
    reason = "full"
    problem = "Conductor's database is full: there is no space left to write"
    advice = "an operator must free disk space, then try again"


class DatabaseReadOnly(DatabaseUnavailable):
    reason = "read-only"
    problem = "Conductor's database is read-only right now"
    advice = "an operator must make it writable again, then try again"


class DatabaseBroken(DatabaseUnavailable):
    reason = "broken"
    problem = "Conductor's database could not be read or written (a disk I/O error)"
    advice = "try again; if it goes on, the operators can find it in the log"


class DatabaseGone(DatabaseUnavailable):
    reason = "gone"
    problem = (
        "Conductor's database file was deleted or replaced while the bot was running, so "
        "Conductor does not use it"
    )
    advice = "an operator must put the file back; Conductor goes on by itself then"


class DatabaseUnreachable(DatabaseUnavailable):
    reason = "unreachable"
    problem = "Conductor's database server cannot be reached"
    advice = "try again once it is back; Conductor goes on by itself then"


_BY_CODE: dict[int, type[DatabaseUnavailable]] = {
    _BUSY: DatabaseBusy,
    _LOCKED: DatabaseBusy,
    _FULL: DatabaseFull,
    _READONLY: DatabaseReadOnly,
    _IOERR: DatabaseBroken,
    _CORRUPT: DatabaseBroken,
    _CANTOPEN: DatabaseBroken,
}
# SQLite's words, for drivers that give no result code
_BY_TEXT: tuple[tuple[str, type[DatabaseUnavailable]], ...] = (
    ("database is locked", DatabaseBusy),
    ("database table is locked", DatabaseBusy),
    ("database or disk is full", DatabaseFull),
    ("readonly database", DatabaseReadOnly),
    ("disk i/o error", DatabaseBroken),
    ("unable to open database file", DatabaseBroken),
)


# PostgreSQL's SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html):
# exact codes first, then their class (the first two characters)
_BY_SQLSTATE: dict[str, type[DatabaseUnavailable]] = {
    # a writer that waited its busy timeout for a lock (lock_timeout), or lost a
    # serialization or a deadlock: another transaction holds what it needs
    "55P03": DatabaseBusy,  # lock_not_available
    "40001": DatabaseBusy,  # serialization_failure
    "40P01": DatabaseBusy,  # deadlock_detected
    "57014": DatabaseBusy,  # query_canceled (a statement timeout)
    "53300": DatabaseBusy,  # too_many_connections
    "53400": DatabaseBusy,  # configuration_limit_exceeded
    "53100": DatabaseFull,  # disk_full
    "53200": DatabaseBroken,  # out_of_memory
    "25006": DatabaseReadOnly,  # read_only_sql_transaction (a standby, or made read-only)
    "58030": DatabaseBroken,  # io_error
    "XX001": DatabaseBroken,  # data_corrupted
    "XX002": DatabaseBroken,  # index_corrupted
    "57P01": DatabaseUnreachable,  # admin_shutdown
    "57P02": DatabaseUnreachable,  # crash_shutdown
    "57P03": DatabaseUnreachable,  # cannot_connect_now (starting up, shutting down)
    "3D000": DatabaseUnreachable,  # invalid_catalog_name: the database is not there
}
_BY_SQLSTATE_CLASS: dict[str, type[DatabaseUnavailable]] = {
    "08": DatabaseUnreachable,  # connection exceptions
    "53": DatabaseBusy,  # insufficient resources (the ones not named above)
}


def unreachable(error: OSError) -> DatabaseUnreachable:
    """A database server that refused or dropped the connection (the driver's ``OSError``:
    refused, reset, timed out)."""
    return DatabaseUnreachable(str(error) or type(error).__name__)


def unavailable(error: DBAPIError) -> DatabaseUnavailable | None:
    """The :class:`DatabaseUnavailable` a driver error stands for, or None when it is
    something else (a constraint, a bug)."""
    original = error.orig
    detail = str(original)
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        kind = _BY_SQLSTATE.get(sqlstate) or _BY_SQLSTATE_CLASS.get(sqlstate[:2])
        if kind is not None:
            return kind(detail)
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int):
        if code == _READONLY_DBMOVED:
            return DatabaseGone(detail)
        kind = _BY_CODE.get(code & 0xFF)
        return kind(detail) if kind is not None else None
    lowered = detail.lower()
    for words, kind in _BY_TEXT:
        if words in lowered:
            return kind(detail)
    if error.connection_invalidated:
        # the driver lost its connection (closed under it: the server went away)
        return DatabaseUnreachable(detail)
    return None
