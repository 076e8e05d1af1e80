"""A throwaway PostgreSQL cluster for the test run, and a fresh database in it per test.

:class:`Cluster` runs Debian's PostgreSQL (``/usr/lib/postgresql/<n>/bin``, or whatever
``pg_config --bindir`` names) from a data directory of its own under the system's temp dir:
``initdb`` with trust authentication, then ``pg_ctl start`` listening on 127.0.0.1 on a free
port, its unix socket in the same directory. ``initdb`` refuses root: as root every program
of the cluster runs as the ``postgres`` user, which owns the directory. ``pg_ctl start -w``
returns once the server accepts connections (it polls; no fixed sleep). :meth:`Cluster.stop`
stops it (``-m immediate``: nothing in it is kept) and removes the directory. A test of the
server going away under a running bot restarts it, or stops and starts it again, on the same
port with the same data (:meth:`Cluster.restart`, :meth:`~Cluster.stop_server`,
:meth:`~Cluster.start_server`).

The cluster is throwaway and so is its durability: ``fsync``, ``full_page_writes`` and
``synchronous_commit`` are off (a crash of the machine loses it; a crash of a test process
does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: where Debian installs each major version's programs
_DEBIAN = Path("/usr/lib/postgresql")
#: how long the server may take to start on a loaded machine (an outer bound: pg_ctl polls)
START_TIMEOUT_S = 120
#: attempts at a free port (another process may take the one found before the server binds)
PORT_ATTEMPTS = 5
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    # the races start a score of engines at once, each with its pool
    "max_connections": "300",
    "shared_buffers": "32MB",
    "max_locks_per_transaction": "256",
}


class Unavailable(RuntimeError):
    """PostgreSQL cannot be had here: the message says why, in one line."""


#: names the directory of PostgreSQL's programs, over the search below
BIN_ENV_VAR = "CONDUCTOR_TEST_PG_BIN"


def bin_dir() -> Path:
    """The directory of ``initdb``, ``pg_ctl`` and ``postgres``: ``CONDUCTOR_TEST_PG_BIN``,
    else the newest Debian version installed, else ``pg_config --bindir``, else the
    ``PATH``."""
    given = os.environ.get(BIN_ENV_VAR)
    if given:
        if not (Path(given) / "initdb").is_file():
            raise Unavailable(f"{BIN_ENV_VAR}={given} has no initdb")
        return Path(given)
    if _DEBIAN.is_dir():
        versions = sorted(
            (p for p in _DEBIAN.iterdir() if (p / "bin" / "initdb").is_file()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
        )
        if versions:
            return versions[-1] / "bin"
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run(  # noqa: S603 - pg_config, fixed arguments
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found and (Path(found) / "initdb").is_file():
            return Path(found)
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).parent
    raise Unavailable(
        "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin, pg_config or "
        "PATH): apt-get install postgresql"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, whether or not an event loop runs
    in this thread (a fixture may be set up from inside one): in a thread of its own."""
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=target, name="postgres-admin")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


class Cluster:
    """One PostgreSQL server for this process's tests. Not started until :meth:`start`."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.root: Path | None = None
        self.port = 0
        self._user: pwd.struct_passwd | None = None
        self._lock = threading.Lock()
        self._started = False
        self._template: str | None = None
        #: stopped by :meth:`stop_server` (its data kept) and not started again yet
        self.down = False

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def _run(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run one of the cluster's programs, as ``postgres`` when this process is root."""
        kwargs: dict[str, Any] = {}
        env = dict(os.environ, LC_ALL="C", LANG="C")
        if self._user is not None:
            kwargs.update(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
            env["HOME"] = self._user.pw_dir
        return subprocess.run(  # noqa: S603 - PostgreSQL's own programs, our arguments
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            cwd=self.root,
            timeout=timeout,
            **kwargs,
        )

    def start(self) -> None:
        """Make the cluster and start its server; raises :class:`Unavailable` in one line
        when it cannot."""
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable(
                    "running as root and there is no postgres user to run PostgreSQL as "
                    "(initdb refuses root): apt-get install postgresql"
                ) from None
        self.root = Path(tempfile.mkdtemp(prefix="conductor-pg-"))
        try:
            if self._user is not None:
                os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
            done = self._run(
                "initdb",
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
            if done.returncode != 0:
                raise Unavailable(f"initdb failed: {_last_line(done)}")
            self._start_server()
        except BaseException:
            self._remove()
            raise
        self._started = True

    def _start_server(self) -> None:
        last = ""
        for _ in range(PORT_ATTEMPTS):
            self.port = _free_port()
            done = self._pg_ctl("start")
            if done.returncode == 0:
                return
            last = _log_tail(self.root / "server.log") or _last_line(done)  # type: ignore[operator]
            if "could not bind" not in last and "in use" not in last:
                break
        raise Unavailable(f"the PostgreSQL server did not start: {last}")

    def _pg_ctl(self, action: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """``pg_ctl start`` or ``restart`` on this cluster's port and settings, waiting
        (``-w``, an outer bound of :data:`START_TIMEOUT_S`) until it accepts connections."""
        options = " ".join(f"-c {key}={value}" for key, value in SERVER_SETTINGS.items())
        return self._run(
            "pg_ctl",
            action,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),  # type: ignore[operator]
            "-o",
            f"-p {self.port} -k {self.root} {options}",
            *extra,
        )

    # -- the server going away under its clients (the data kept) -----------------------------

    def restart(self) -> None:
        """``pg_ctl restart`` (``-m fast``: every connection is dropped, as an operator's
        restart drops them): back on the same port with the same data when it returns."""
        self._must(self._pg_ctl("restart", "-m", "fast"), "restart")

    def stop_server(self) -> None:
        """Stop the server (``-m fast``: connections dropped, the data kept) until
        :meth:`start_server`; its clients find nothing listening on the port."""
        done = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")
        self._must(done, "stop")
        self.down = True

    def start_server(self) -> None:
        """Start the stopped server again, on the same port, with the same data."""
        self._must(self._pg_ctl("start"), "start")
        self.down = False

    def _must(self, done: subprocess.CompletedProcess[str], what: str) -> None:
        if done.returncode != 0:
            why = _log_tail(self.root / "server.log") or _last_line(done)  # type: ignore[operator]
            raise RuntimeError(f"pg_ctl {what} failed: {why}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the server (at once: nothing in it is kept) and remove its directory."""
        if self._started:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
            self._started = False
        self._remove()

    def _remove(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    # -- databases ---------------------------------------------------------------------------

    async def _execute(self, *statements: str) -> None:
        import asyncpg  # noqa: PLC0415 - only a run with PostgreSQL needs it

        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres")
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def create_database(self, *, schema: bool = False) -> str:
        """A fresh database, empty or (``schema``) with the tables at the migrations' head as
        ``Database.create_all`` makes them (copied from a template made once: a copy takes a
        few milliseconds, ``create_all`` about 80); returns its name."""
        name = f"t_{uuid.uuid4().hex}"
        template = f' TEMPLATE "{self._schema_template()}"' if schema else ""
        _run_async(self._execute(f'CREATE DATABASE "{name}"{template}'))
        return name

    def _schema_template(self) -> str:
        with self._lock:
            if self._template is None:
                name = "conductor_head"
                _run_async(self._execute(f'CREATE DATABASE "{name}"'))
                _run_async(_create_all(self.url(name)))
                self._template = name
            return self._template

    def drop_database(self, name: str) -> None:
        """Drop it, closing whatever connections a test left open on it."""
        _run_async(self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    @contextlib.contextmanager
    def database(self, *, schema: bool = False) -> Iterator[str]:
        """A fresh database for the block (see :meth:`create_database`), dropped after it;
        yields its URL."""
        name = self.create_database(schema=schema)
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)


async def _create_all(url: str) -> None:
    from store.db import Database  # noqa: PLC0415

    database = Database(url)
    try:
        await database.create_all()
    finally:
        await database.dispose()


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if "FATAL" in line or "ERROR" in line]
    return (errors or lines or [""])[-1]
