"""The ``conductor`` command, run for real in a subprocess with a clean environment."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from store.models import Base
from tests.helpers import clean_env, run_conductor, run_python

APP_TABLES = frozenset(Base.metadata.tables)
#: this checkout, first on the subprocess's path (the venv's editable install may point elsewhere)
ROOT = Path(__file__).resolve().parents[2]
#: the newest migration, and the one before it
HEAD, PREVIOUS = "0014_sizing_conversation", "0013_shard_leases"
SECRET = "NzA5.fake-token-value.do-not-print-me"
MISSING_TOKEN_LINE = (
    "error: CONDUCTOR_DISCORD_TOKEN is not set; export the bot token "
    "(or run `conductor demo`, which needs none)"
)


def run_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = clean_env(tmp_path)  # in tmp_path: no conductor.toml unless the test writes one
    return run_conductor(tmp_path, *args, env=clean | (env or {}))


def tables(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def columns(db_path: Path, table: str) -> set[str]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
    return {row[1] for row in rows}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    return f"sqlite+aiosqlite:///{db_path}"


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout
    assert "db" in result.stdout
    assert "Migrate the database and run the Discord bot" in result.stdout

    db_help = run_cli(tmp_path, "db", "--help")
    assert db_help.returncode == 0, db_help.stderr
    for command in ("upgrade", "downgrade", "current", "check"):
        assert command in db_help.stdout


@pytest.mark.parametrize("token", [None, "", "   "])
def test_run_without_a_token_exits_2_with_one_line(tmp_path: Path, token: str | None) -> None:
    env = {} if token is None else {"CONDUCTOR_DISCORD_TOKEN": token}
    result = run_cli(tmp_path, "run", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [MISSING_TOKEN_LINE]
    assert result.stdout == ""
    assert not (tmp_path / "conductor.db").exists()  # nothing touched before the check


def test_run_with_a_bad_setting_names_the_variable(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path,
        "run",
        env={"CONDUCTOR_REQUIRED_APPROVALS": "zero", "CONDUCTOR_DISCORD_TOKEN": SECRET},
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("CONDUCTOR_REQUIRED_APPROVALS: ")
    assert "zero" in lines[0]
    assert SECRET not in result.stdout + result.stderr


def test_a_bad_token_in_the_config_file_is_named_but_not_echoed(tmp_path: Path) -> None:
    config = tmp_path / "conductor.toml"
    config.write_text("discord_token = 123456789012\nrequired_approvals = 0\n")
    result = run_cli(tmp_path, "run", env={"CONDUCTOR_CONFIG": str(config)})
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    # named where they were written: the file's keys, not variables nobody set
    assert any(line.startswith(f"{config}: discord_token: ") for line in lines)
    assert any(line.startswith(f"{config}: required_approvals: ") for line in lines)
    assert "CONDUCTOR_" not in result.stderr
    assert "123456789012" not in result.stdout + result.stderr


def test_run_with_a_broken_app_table_stops_before_anything_naming_it(
    tmp_path: Path, db_path: Path, db_url: str
) -> None:
    config = tmp_path / "conductor.toml"
    config.write_text(
        '[app]\nproduction_url = "https://app.example.com"\n'
        'rollback_command = "git revert {sha}"\n[[app.smoke]]\npath = "/"\n'
    )
    result = run_cli(
        tmp_path,
        "run",
        env={
            "CONDUCTOR_CONFIG": str(config),
            "CONDUCTOR_DISCORD_TOKEN": SECRET,
            "CONDUCTOR_DATABASE_URL": db_url,
        },
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {config}: app.rollback_command: uses unknown placeholder {{sha}}; "
        "allowed: {merge_sha}, {release}, {version}"
    ]
    assert not db_path.exists()  # stopped before the migrations
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("table", "error"),
    [
        (
            '[git]\npath = "/srv/clone"\nmain = "--upload-pack=x"\n',
            "git.main: Value error, not a branch name",
        ),
        ('[git]\nmain = "main"\n', "git.path: Field required"),
        ("[deploy]\ntimeout = -1\n", "deploy.timeout: Input should be greater than 0"),
        ('[deploy]\ncomand = "bin/deploy"\n', "deploy.comand: Extra inputs are not permitted"),
        (
            "[reminders]\nlock_after = 90\n",
            "reminders.lock_after: a number needs a unit; expected",
        ),
        ('[reminders]\nevery = "1h"\n', "reminders.every: not a setting"),
    ],
)
def test_run_with_a_broken_git_deploy_or_reminders_table_stops_naming_the_field(
    tmp_path: Path, db_path: Path, db_url: str, table: str, error: str
) -> None:
    config = tmp_path / "conductor.toml"
    config.write_text(table)
    result = run_cli(
        tmp_path,
        "run",
        env={
            "CONDUCTOR_CONFIG": str(config),
            "CONDUCTOR_DISCORD_TOKEN": SECRET,
            "CONDUCTOR_DATABASE_URL": db_url,
        },
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {config}: {error}"), line
    assert not db_path.exists()  # stopped before the migrations


@pytest.mark.parametrize(
    ("table", "env", "line"),
    [
        (
            "[web]\nport = 70000\n",
            {},
            "{config}: [web] port: Input should be less than or equal to 65535 (got 70000)",
        ),
        (
            "",
            {"CONDUCTOR_WEB_ENABLED": "maybe"},
            "CONDUCTOR_WEB_ENABLED: Input should be a valid boolean, unable to interpret "
            "input (got 'maybe')",
        ),
        ("[web]\nprot = 8080\n", {}, "{config}: [web] prot: Extra inputs are not permitted"),
    ],
)
def test_run_with_a_bad_web_setting_stops_naming_it(
    tmp_path: Path, db_path: Path, db_url: str, table: str, env: dict[str, str], line: str
) -> None:
    config = tmp_path / "conductor.toml"
    config.write_text(table)
    result = run_cli(
        tmp_path,
        "run",
        env={
            "CONDUCTOR_CONFIG": str(config),
            "CONDUCTOR_DISCORD_TOKEN": SECRET,
            "CONDUCTOR_DATABASE_URL": db_url,
            **env,
        },
    )
    assert result.returncode == 2
    [shown] = result.stderr.splitlines()
    assert shown.startswith(line.format(config=config)), shown
    assert not db_path.exists()  # stopped before the migrations
    assert SECRET not in result.stdout + result.stderr


def test_run_with_a_token_migrates_then_fails_cleanly_without_discord(
    tmp_path: Path, db_path: Path, db_url: str
) -> None:
    """Migrations come first; then the bot tries Discord. Offline (CI here) that is "cannot
    reach Discord", exit 1; with a network Discord refuses the fake token, exit 2. Either way
    one clean line, no traceback, and never the token."""
    result = run_cli(
        tmp_path,
        "run",
        env={"CONDUCTOR_DISCORD_TOKEN": SECRET, "CONDUCTOR_DATABASE_URL": db_url},
    )
    assert tables(db_path) == APP_TABLES | {"alembic_version"}
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in result.stderr
    if result.returncode == 1:
        assert len(errors) == 1 and errors[0].startswith("error: cannot reach Discord: ")
    else:
        assert result.returncode == 2
        assert errors == ["error: Discord refused CONDUCTOR_DISCORD_TOKEN; check the bot token"]
    assert SECRET not in result.stdout + result.stderr


def test_db_upgrade_current_downgrade(tmp_path: Path, db_path: Path, db_url: str) -> None:
    current = run_cli(tmp_path, "db", "current", "--url", db_url)
    assert current.returncode == 1  # a read: no database there, none made
    assert "run `conductor db upgrade` to create it" in current.stderr
    assert not db_path.exists()

    upgraded = run_cli(tmp_path, "db", "upgrade", "--url", db_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"database at head ({HEAD})"
    assert tables(db_path) == APP_TABLES | {"alembic_version"}

    current = run_cli(tmp_path, "db", "current", "--url", db_url)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == f"database at head ({HEAD})"

    checked = run_cli(tmp_path, "db", "check", "--url", db_url)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines() == [
        f"database at head ({HEAD}); the models match the migrations"
    ]

    downgraded = run_cli(tmp_path, "db", "downgrade", "--url", db_url)  # one step
    assert downgraded.returncode == 0, downgraded.stderr
    assert downgraded.stdout.strip() == f"database at {PREVIOUS} (head is {HEAD})"
    with sqlite3.connect(db_path) as conn:  # 0014's tables gone, 0012's indexes kept
        task_indexes = {row[1] for row in conn.execute("PRAGMA index_list(tasks)")}
    assert "task_bids" not in tables(db_path) and "task_comments" not in tables(db_path)
    assert "shard_leases" in tables(db_path)
    assert "ix_tasks_guild_id_updated_at_id" in task_indexes
    again = run_cli(tmp_path, "db", "downgrade", "--revision", "0001_initial", "--url", db_url)
    assert again.stdout.strip() == f"database at 0001_initial (head is {HEAD})"
    assert "release_seals" not in tables(db_path)

    emptied = run_cli(tmp_path, "db", "downgrade", "--revision", "base", "--url", db_url)
    assert emptied.returncode == 0, emptied.stderr
    assert "no migrations applied" in emptied.stdout
    assert tables(db_path) & APP_TABLES == set()


def test_db_commands_take_the_url_from_the_settings(
    tmp_path: Path, db_path: Path, db_url: str
) -> None:
    env = {"CONDUCTOR_DATABASE_URL": db_url}
    assert run_cli(tmp_path, "db", "upgrade", "--revision", "head", env=env).returncode == 0
    assert tables(db_path) == APP_TABLES | {"alembic_version"}
    assert not (tmp_path / "conductor.db").exists()  # not the default file

    result = run_cli(tmp_path, "db", "downgrade", "--revision", "base", env=env)
    assert result.returncode == 0, result.stderr
    assert tables(db_path) & APP_TABLES == set()


def test_db_check_fails_with_one_line_on_an_empty_database(
    tmp_path: Path, db_path: Path, db_url: str
) -> None:
    sqlite3.connect(db_path).close()  # an empty database file
    result = run_cli(tmp_path, "db", "check", "--url", db_url)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: check failed: the database is empty (no migration applied), not at head "
        f"({HEAD}): run `conductor db upgrade`"
    ]


def test_db_upgrade_fails_with_one_line_on_a_bad_revision(tmp_path: Path, db_url: str) -> None:
    result = run_cli(tmp_path, "db", "upgrade", "--revision", "nope", "--url", db_url)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: upgrade failed: ")


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("--help",), 0),
        (("run",), 2),
        (("db", "upgrade"), 0),
        (("db", "current"), 1),  # no database: a read makes none
        (("db", "check"), 1),
        (("db", "downgrade", "--revision", "base"), 1),
    ],
)
def test_the_token_never_appears_in_any_output(
    tmp_path: Path, db_url: str, args: tuple[str, ...], status: int
) -> None:
    env = {
        "CONDUCTOR_DISCORD_TOKEN": SECRET,
        "CONDUCTOR_DATABASE_URL": db_url,
        # A bad setting beside it, so `run` stops at validation whether or not the bot exists.
        "CONDUCTOR_REQUIRED_APPROVALS": "0",
    }
    if args[0] == "db":
        del env["CONDUCTOR_REQUIRED_APPROVALS"]
    result = run_cli(tmp_path, *args, env=env)
    assert result.returncode == status, result.stderr
    assert SECRET not in result.stdout
    assert SECRET not in result.stderr


def test_help_loads_neither_discord_nor_the_database_nor_the_browser() -> None:
    # ``conductor --help`` must answer at once: the CLI loads what a command needs when it runs.
    script = (
        "import sys\n"
        "sys.argv = ['conductor', '--help']\n"
        "from cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'discord', 'sqlalchemy', 'alembic', 'playwright', 'httpx', 'aiohttp',\n"
        "         'pydantic_settings', 'simcord', 'bot', 'store', 'smoke'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy), file=sys.stderr)\n"
    )
    done = run_python(script, timeout=60, check=False)
    assert "Usage: conductor" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_smoke_loads_neither_discord_nor_the_database(tmp_path: Path, dead_url: str) -> None:
    # ``conductor smoke`` pays for Playwright and httpx, not for SQLAlchemy (~0.4 s) or
    # discord.py: reading where the config file is must not bring the store along, nor
    # pydantic-settings (~0.1 s), nor the domain's views (the text module's type hints).
    script = (
        "import json, sys\n"
        f"sys.argv = ['conductor', 'smoke', {dead_url!r}]\n"
        "from cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    code = done.code\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "heavy = {'discord', 'sqlalchemy', 'alembic', 'aiosqlite', 'aiohttp', 'simcord',\n"
        "         'store', 'cogs', 'pydantic_settings'}\n"
        "spare = {'bot.settings', 'conductor.views'} & set(sys.modules)\n"
        "print(json.dumps([code, 'playwright' in loaded, sorted((loaded & heavy) | spare)]),\n"
        "      file=sys.stderr)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = run_python(
        script,
        cwd=tmp_path,  # no conductor.toml there: the default suite
        env=clean_env(tmp_path, PYTHONPATH=str(root)),
        timeout=60,
        check=False,
    )
    assert "Smoke seal: red" in done.stdout, done.stdout + done.stderr
    # exit 1 (unreachable), after the runner really ran (Playwright loaded), and no store
    assert json.loads(done.stderr.strip().splitlines()[-1]) == [1, True, []]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "error: CONDUCTOR_CONFIG: {path} does not exist"),
        ("directory", "error: CONDUCTOR_CONFIG: {path} is a directory"),
        ("latin-1", "error: {path}: not valid UTF-8 (a TOML file is UTF-8 text)"),
    ],
)
def test_a_config_file_that_cannot_be_read_stops_the_start(
    tmp_path: Path, setup: str, expected: str
) -> None:
    path = tmp_path / "conductor-config.toml"
    if setup == "directory":
        path.mkdir()
    elif setup == "latin-1":
        path.write_bytes('guild_id = 1\nnotes_channel = "caf\xe9"\n'.encode("latin-1"))
    for command in (["run"], ["db", "current"], ["smoke", "http://127.0.0.1:9"]):
        result = run_cli(
            tmp_path, *command,
            env={"CONDUCTOR_CONFIG": str(path), "CONDUCTOR_DISCORD_TOKEN": SECRET},
        )  # fmt: skip
        assert result.returncode == 2, (command, result.stderr)
        [line] = result.stderr.splitlines()
        assert line == expected.format(path=path), (command, line)
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "CONDUCTOR_DATABASE_URL",
            "sqlite:///x.db",
            "CONDUCTOR_DATABASE_URL: Value error, needs an async driver (sqlite+aiosqlite://, "
            "postgresql+asyncpg://), got sqlite:// (got 'sqlite:///x.db')",
        ),
        (
            "CONDUCTOR_DATABASE_URL",
            "postgresql://ops:hunter2@db.internal/conductor",
            "CONDUCTOR_DATABASE_URL: Value error, needs an async driver (sqlite+aiosqlite://, "
            "postgresql+asyncpg://), got postgresql:// "
            "(got 'postgresql://ops:***@db.internal/conductor')",
        ),
        (
            "CONDUCTOR_GUILD_ID",
            "-5",
            "CONDUCTOR_GUILD_ID: Input should be greater than 0 (got '-5')",
        ),
    ],
)
def test_a_bad_setting_stops_the_start_in_one_line_without_secrets(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    result = run_cli(tmp_path, "run", env={variable: value, "CONDUCTOR_DISCORD_TOKEN": SECRET})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [expected]
    assert "hunter2" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "url", ["https://discord.com", "http://192.168.1.20:8080", "http://127.0.0.1:8080/api"]
)
def test_run_refuses_a_discord_api_url_off_this_machine(
    tmp_path: Path, db_path: Path, db_url: str, url: str
) -> None:
    result = run_cli(
        tmp_path,
        "run",
        env={
            "CONDUCTOR_DISCORD_API_URL": url,
            "CONDUCTOR_DISCORD_TOKEN": SECRET,
            "CONDUCTOR_DATABASE_URL": db_url,
            "PYTHONPATH": str(ROOT),
        },
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("CONDUCTOR_DISCORD_API_URL: ")
    assert url in line
    assert SECRET not in result.stdout + result.stderr
    assert not db_path.exists()  # refused before anything was touched


def test_run_with_a_loopback_discord_api_url_goes_there(
    tmp_path: Path, db_path: Path, db_url: str
) -> None:
    """Nothing listens on the port: discord.py's first call (the login) fails there, not at
    discord.com, and the one line names the stand-in's address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli(
        tmp_path,
        "run",
        env={
            "CONDUCTOR_DISCORD_API_URL": f"http://127.0.0.1:{port}",
            "CONDUCTOR_DISCORD_TOKEN": SECRET,
            "CONDUCTOR_DATABASE_URL": db_url,
            "PYTHONPATH": str(ROOT),
        },
    )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [errors[0]] and errors[0].startswith("error: cannot reach Discord: ")
    assert f"127.0.0.1:{port}" in errors[0]
    assert "Traceback" not in result.stderr
    # the client was built (it tried to log in), without discord.py's voice warnings
    assert "voice will NOT be supported" not in result.stderr
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("sandbox", ["", 'sandbox = "off"\n'], ids=["default", "off"])
def test_run_without_bubblewrap_refuses_to_run_commands_unless_the_sandbox_is_off(
    tmp_path: Path, db_path: Path, db_url: str, sandbox: str
) -> None:
    """bubblewrap missing (a PATH without it) and a test command to run: ``conductor run``
    stops in one line saying what to do; with ``sandbox = "off"`` written it goes on."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("prlimit", "git"):
        (bin_ / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    config = tmp_path / "conductor.toml"
    config.write_text(f'[git]\npath = "{tmp_path}"\ntest_command = "make test"\n{sandbox}')
    result = run_cli(
        tmp_path,
        "run",
        env={
            "CONDUCTOR_CONFIG": str(config),
            "CONDUCTOR_DISCORD_TOKEN": SECRET,
            "CONDUCTOR_DATABASE_URL": db_url,
            "PATH": str(bin_),
        },
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    if sandbox:  # it went on: migrated, then on to Discord (unreachable or refusing here)
        assert tables(db_path) == APP_TABLES | {"alembic_version"}
        assert len(errors) == 1 and "bubblewrap" not in errors[0]
        return
    assert result.returncode == 2
    assert errors == [
        f"error: {config}: bubblewrap is missing, so the test and deploy commands cannot be "
        'sandboxed: install it (apt-get install bubblewrap), or write sandbox = "off" in '
        "[git] to run them unsandboxed"
    ]
    assert not db_path.exists()  # stopped before the migrations


def test_run_upgrades_only_a_database_behind_and_so_leaves_alembic_unloaded(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'head.db'}"
    script = (
        "import sys\n"
        "from cli.main import _at_head\n"
        "from store import migrate\n"
        f"before = _at_head({url!r})\n"
        "loaded = 'alembic' in sys.modules\n"
        f"migrate.upgrade({url!r})\n"
        f"print(before, loaded, _at_head({url!r}))\n"
    )
    at_head = run_python(script)
    # empty: not at head (run upgrades it); asking loaded no alembic; at head after the upgrade
    assert at_head.stdout.split() == ["False", "False", "True"], at_head.stderr
