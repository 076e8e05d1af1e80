"""The sandbox the release's code runs in: the test command (the agents' branches) and the
deploy command (whatever the release carries) are code Conductor did not write.

With bubblewrap (``bwrap``, the default) each command runs in namespaces of its own, as
Flatpak and the Nix build sandbox run theirs:

- **its own PID namespace**, whose first process (bwrap) takes everything down when the
  command ends, when it is killed at its timeout, or when the bot dies (``--die-with-parent``):
  a child started in the background, or one that called ``setsid``, never outlives its run;
- **an empty mount namespace**: the system (``/usr`` and a few files of ``/etc``) read-only,
  a private ``/tmp`` and home (tmpfs, bounded), the command's own tree (an export of one
  commit, not a worktree: no ``.git``) the only writable place, plus only what the operator
  granted by name; the bot's database, config, clone, logs and ``/proc`` entries are absent;
- **no network** (a network namespace of its own: only its own loopback) unless granted the
  host's;
- **no environment** but ``PATH``, ``HOME``, ``TMPDIR``, ``LANG``, what Conductor sets for the
  run and the variables the operator named (``keep_env = false``, as nsjail);
- **a session of its own** (``--new-session``: no TIOCSTI into the bot's terminal,
  CVE-2017-5226) and no capabilities;
- **limits** bubblewrap does not set itself, as rlimits (``prlimit``) on the command: CPU
  time, address space, processes, open files, the size of any file it writes (its output
  included);
- **an unprivileged user**: when the bot runs as root the command runs as ``nobody`` (the
  process limit counts per user, and root is never limited).

``sandbox = "off"`` runs the commands as before (the bot's user, the clone's directory, the
environment without ``CONDUCTOR_*``), under the same rlimits and with their process group
killed at the timeout: for a machine without bubblewrap, by the operator's explicit choice.

The bot's own process is made not dumpable (:func:`close_process`), so no child of the same
user can read its environment or memory through ``/proc/<pid>`` or ptrace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: the lines of a command's output kept on the release (the whole output is on disk)
TAIL_LINES = 20
TAIL_CHARS = 1500
#: the user a sandboxed command runs as when the bot is root (Debian's ``nobody``)
NOBODY = 65534
#: the sandbox's home directory (a tmpfs)
HOME = "/home/sandbox"
#: the directories private to each command (tmpfs): its temporary files and home
PRIVATE = ("/tmp", "/var/tmp", HOME)  # noqa: S108 - inside the sandbox, its own
PATH = "/usr/local/bin:/usr/bin:/bin"
#: what of /etc a command sees: names and libraries resolve, TLS verifies, time is local
ETC = (
    "passwd", "group", "hosts", "resolv.conf", "nsswitch.conf", "host.conf", "gai.conf",
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "ssl",
    "ca-certificates", "ca-certificates.conf", "alternatives", "mime.types", "protocols",
    "services", "os-release", "debian_version",
)  # fmt: skip
#: the top-level system directories: bound read-only, or recreated as the symlinks they are
SYSTEM = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
MIB = 1024 * 1024


class SandboxMode(enum.StrEnum):
    BWRAP = "bwrap"
    OFF = "off"


Network = Literal["none", "host"]


class Limits(BaseModel):
    """What one command may use; 0 means no limit. The defaults fit a test suite of a
    medium project; an operator changes them in ``[git.limits]`` (the test command) or
    ``[deploy.limits]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: CPU seconds of each of its processes (None: its wall-clock timeout)
    cpu_s: int | None = Field(default=None, ge=0)
    #: address space of each process, MiB (nsjail: 512; a JIT or a browser needs more)
    memory_mb: int = Field(default=4096, ge=0)
    #: processes and threads of the sandbox's user at once (a fork bomb stops here)
    processes: int = Field(default=1024, ge=0)
    open_files: int = Field(default=1024, ge=0)
    #: the largest file it may write, its output log included, MiB
    output_mb: int = Field(default=1024, ge=0)
    #: the private /tmp and home, MiB each (memory-backed)
    tmp_mb: int = Field(default=1024, ge=0)

    def prlimit(self, timeout_s: float) -> list[str]:
        """``prlimit`` and its options: the limits set, soft and hard, on the command."""
        cpu = self.cpu_s if self.cpu_s is not None else max(1, int(timeout_s) + 1)
        pairs = {
            "--cpu": cpu,
            "--as": self.memory_mb * MIB,
            "--nproc": self.processes,
            "--nofile": self.open_files,
            "--fsize": self.output_mb * MIB,
        }
        return ["prlimit", *(f"{name}={value}" for name, value in pairs.items() if value)]


@dataclass(frozen=True, slots=True)
class Grant:
    """What one command is given beyond its tree: the bot's environment variables named (by
    name: their values are read at the run), paths read-only or writable, the network."""

    env: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    network: Network = "none"


def absolute_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    """Granted paths: absolute, and never the whole file system."""
    for path in paths:
        if not os.path.isabs(path) or os.path.normpath(path) == "/":
            raise ValueError(f"a granted path must be absolute and not /: {path!r}")
    return tuple(os.path.normpath(p) for p in paths)


class SandboxError(RuntimeError):
    """The sandbox cannot run a command (bubblewrap missing or refused, a grant missing);
    the message is one line naming what to do."""


@dataclass(frozen=True, slots=True)
class CommandRun:
    """A command Conductor ran for a release (the test command, the deploy)."""

    passed: bool
    duration_ms: int
    #: the output's last lines
    tail: str
    #: where the whole output is
    log: str
    timed_out: bool = False
    returncode: int | None = None


def scrubbed_environment() -> dict[str, str]:
    """This process's environment without Conductor's own settings (the unsandboxed mode and
    git itself): no command ever sees the Discord token or the database URL."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("CONDUCTOR_")}


def tail_of(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()][-TAIL_LINES:]
    out = "\n".join(lines)
    return out if len(out) <= TAIL_CHARS else "…" + out[-(TAIL_CHARS - 1) :]


def _read_end(path: Path, size: int = 64 * 1024) -> str:
    """The end of a file that may be large (a test suite's whole output)."""
    with path.open("rb") as source:
        source.seek(0, os.SEEK_END)
        source.seek(max(0, source.tell() - size))
        return source.read().decode("utf-8", errors="replace")


def close_process() -> bool:
    """Make this process not dumpable (``prctl(PR_SET_DUMPABLE, 0)``): a child of the same
    user can then read neither its environment (``/proc/<pid>/environ``) nor its memory, nor
    ptrace it. False where the call is not available (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(4, 0, 0, 0, 0) == 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        return False


#: what Conductor keeps of its settings only in memory once read
SECRETS = (
    "CONDUCTOR_DISCORD_TOKEN",
    "CONDUCTOR_DATABASE_URL",
    "CONDUCTOR_WEB_CLIENT_SECRET",
    "CONDUCTOR_WEB_SESSION_SECRET",
)


def forget_secrets() -> None:
    """Drop the token, the database URL (it may hold a password) and the board's secrets
    from this process's environment once they are read: nothing started later inherits
    them, whatever it is."""
    for name in SECRETS:
        os.environ.pop(name, None)


class Sandbox:
    """Runs a release's commands: in bubblewrap (``mode="bwrap"``) or, when the operator
    wrote ``sandbox = "off"``, as the bot's user in its directory."""

    def __init__(self, mode: SandboxMode = SandboxMode.BWRAP) -> None:
        self.mode = mode
        self.bwrap = shutil.which("bwrap")
        self.prlimit = shutil.which("prlimit")

    @property
    def on(self) -> bool:
        return self.mode is SandboxMode.BWRAP

    #: the uid and gid the command runs as: None keeps the bot's (it is not root)
    @property
    def user(self) -> int | None:
        return NOBODY if self.on and os.geteuid() == 0 else None

    def problem(self) -> str | None:
        """Why commands cannot run here, in one line; None when they can."""
        if self.prlimit is None:
            return "prlimit (util-linux) is missing: install util-linux"
        if not self.on:
            return None
        if self.bwrap is None:
            return (
                "bubblewrap is missing, so the test and deploy commands cannot be sandboxed: "
                'install it (apt-get install bubblewrap), or write sandbox = "off" in [git] '
                "to run them unsandboxed"
            )
        return None

    async def probe(self) -> str | None:
        """Run ``true`` in the sandbox: None when it works, else why not (one line)."""
        if (problem := self.problem()) is not None:
            return problem
        tree = Path(_private_dir("conductor-probe-"))
        try:
            self.own(tree)
            argv = self.argv("true", tree=tree, grant=Grant(), limits=Limits(), timeout_s=10)
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                **self._spawn(),
            )
            _, err = await process.communicate()
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        if process.returncode == 0:
            return None
        said = " ".join(err.decode(errors="replace").split())[:200] or f"exit {process.returncode}"
        return (
            f"bubblewrap cannot make a sandbox here ({said}): allow unprivileged user "
            'namespaces, or write sandbox = "off" in [git] to run the commands unsandboxed'
        )

    def own(self, tree: Path) -> None:
        """Give ``tree`` to the sandbox's user (when the bot is root: to ``nobody``)."""
        user = self.user
        if user is None:
            return
        for path in _walk(tree):
            os.lchown(path, user, user)

    def argv(
        self, command: str, *, tree: Path, grant: Grant, limits: Limits, timeout_s: float
    ) -> list[str]:
        """The command line that runs ``command`` through ``sh -c`` in ``tree``."""
        limited = [*limits.prlimit(timeout_s), "--", "/bin/sh", "-c", command]
        if not self.on:
            return limited
        args = [self.bwrap or "bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
        if grant.network == "host":
            args.append("--share-net")
        args += ["--cap-drop", "ALL", "--hostname", "sandbox"]
        root = Path("/")
        args += ["--ro-bind", "/usr", "/usr"]
        for name in SYSTEM:
            path = root / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        for name in ETC:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev"]
        for private in PRIVATE:
            if limits.tmp_mb:
                args += ["--size", str(limits.tmp_mb * MIB)]
            args += ["--tmpfs", private]
        for granted in grant.read:
            args += ["--ro-bind", granted, granted]
        for granted in grant.write:
            args += ["--bind", granted, granted]
        args += ["--bind", str(tree), str(tree), "--chdir", str(tree)]
        args += ["--clearenv"]
        for name, value in self._environment(grant).items():
            args += ["--setenv", name, value]
        return [*args, "--", *limited]

    def _environment(self, grant: Grant) -> dict[str, str]:
        env = {
            "PATH": PATH,
            "HOME": HOME,
            "TMPDIR": PRIVATE[0],
            "LANG": "C.UTF-8",
            "USER": "sandbox",
        }
        for name in grant.env:
            if name in os.environ and not name.upper().startswith("CONDUCTOR_"):
                env[name] = os.environ[name]
        return env

    def _spawn(self) -> dict[str, Any]:
        user = self.user
        if user is None:
            return {"start_new_session": True}
        return {"start_new_session": True, "user": user, "group": user, "extra_groups": []}

    def check_grant(self, grant: Grant) -> None:
        """Every granted path exists (a bind of a missing one would fail obscurely)."""
        if not self.on:
            return
        missing = [p for p in (*grant.read, *grant.write) if not Path(p).exists()]
        if missing:
            raise SandboxError(
                f"the sandbox cannot grant {', '.join(f'`{p}`' for p in missing)}: "
                f"{'it does' if len(missing) == 1 else 'they do'} not exist"
            )

    async def run(
        self,
        command: str,
        *,
        tree: Path,
        log_path: Path,
        limit_s: float,
        env: Mapping[str, str],
        grant: Grant = Grant(),
        limits: Limits = Limits(),  # noqa: B008 - frozen
    ) -> CommandRun:
        """Run the operator's ``command`` through the shell in ``tree``, its output (stdout
        and stderr) to ``log_path``; past ``limit_s`` seconds it is killed, everything it
        started with it. ``env`` is what Conductor sets for the run (the release, the SHA)."""
        if (problem := self.problem()) is not None:
            raise SandboxError(problem)
        self.check_grant(grant)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = self.argv(command, tree=tree, grant=grant, limits=limits, timeout_s=limit_s)
        if self.on:  # the run's own variables, after the sandbox's
            extra = [a for k, v in env.items() for a in ("--setenv", k, v)]
            cut = argv.index("--clearenv") + 1
            argv = [*argv[:cut], *extra, *argv[cut:]]
            environment = {}
        else:
            environment = {**scrubbed_environment(), **env}
        started = time.perf_counter()
        timed_out = False
        with log_path.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd="/" if self.on else tree,  # bwrap enters the tree itself (--chdir)
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
                env=environment,
                **self._spawn(),
            )
            try:
                await asyncio.wait_for(process.wait(), limit_s)
            except TimeoutError:
                timed_out = True
                _kill(process.pid)
                await process.wait()
            except BaseException:
                _kill(process.pid)
                raise
            finally:
                if not self.on:  # without a PID namespace: its group, whatever is left
                    _kill(process.pid)
        duration = round((time.perf_counter() - started) * 1000)
        tail = tail_of(await asyncio.to_thread(_read_end, log_path))
        if timed_out:
            tail = (tail + "\n" if tail else "") + f"(killed after {limit_s:g} s)"
        return CommandRun(
            passed=not timed_out and process.returncode == 0,
            duration_ms=duration,
            tail=tail,
            log=str(log_path),
            timed_out=timed_out,
            returncode=process.returncode,
        )


def _kill(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (bwrap and, through its PID namespace, all
    the command started; unsandboxed, the command's group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _walk(tree: Path) -> Iterator[str]:
    yield str(tree)
    for top, dirs, files in os.walk(tree):
        for name in (*dirs, *files):
            yield os.path.join(top, name)


def _private_dir(prefix: str) -> str:
    return tempfile.mkdtemp(prefix=prefix)


async def run_logged(
    command: str,
    *,
    cwd: Path,
    log_path: Path,
    limit_s: float,
    env: Mapping[str, str],
    sandbox: Sandbox | None = None,
    grant: Grant = Grant(),
    limits: Limits = Limits(),  # noqa: B008 - frozen
) -> CommandRun:
    """Run ``command`` in ``cwd`` (see :meth:`Sandbox.run`); without a ``sandbox``,
    unsandboxed (the bot's user, its directory, its environment without ``CONDUCTOR_*``)."""
    box = sandbox if sandbox is not None else Sandbox(SandboxMode.OFF)
    return await box.run(
        command, tree=cwd, log_path=log_path, limit_s=limit_s, env=env, grant=grant, limits=limits
    )
