"""The ``[app]`` table: what a good one gives, and a bad one named field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smoke import AppConfig, SmokeCheck, SmokeConfigError, load_app_config, parse_app_config
from smoke.config import default_chromium
from smoke.sample_app import SAMPLE_ROLLBACK, sample_app_table, sample_checks

URL = "https://app.example.com"


def table(**overrides: Any) -> dict[str, Any]:
    return sample_app_table(URL, **overrides)


def test_the_sample_table_is_valid() -> None:
    app = parse_app_config(table())
    assert app.name == "studio"
    assert app.production_url == URL
    assert app.health_url == f"{URL}/up"
    assert app.rollback_command == SAMPLE_ROLLBACK
    assert app.chromium_path == default_chromium()
    assert [c.path for c in app.smoke] == ["/", "/signin", "/tasks", "/changelog", "/devops"]
    assert app.smoke[0] == SmokeCheck(path="/", expect_text="Studio")
    assert app.smoke[1].selector == "form input[type=password]"
    assert app.smoke[4].expect_status == 404
    assert all(c.timeout == 15.0 for c in app.smoke)
    assert len(app.smoke) + 1 == 6  # with the health check: "6/6 checks passed"


def test_sample_checks_are_fresh_copies() -> None:
    first = sample_checks()
    first[0]["path"] = "/changed"
    assert sample_checks()[0]["path"] == "/"


def test_overrides_replace_keys() -> None:
    app = parse_app_config(table(smoke=[{"path": "/x"}], health_timeout=2.0))
    assert [c.path for c in app.smoke] == ["/x"] and app.health_timeout == 2.0


def test_the_url_is_normalised() -> None:
    app = parse_app_config(table(production_url=" https://app.example.com/ "))
    assert app.production_url == URL
    assert app.url("/signin") == f"{URL}/signin"


def test_at_points_the_same_checks_elsewhere() -> None:
    app = parse_app_config(table())
    local = app.at("http://127.0.0.1:8000/")
    assert local.production_url == "http://127.0.0.1:8000"
    assert local.smoke == app.smoke and local.rollback_command == app.rollback_command


def test_at_with_a_bad_url_names_the_field() -> None:
    app = parse_app_config(table())
    with pytest.raises(SmokeConfigError, match=r"app\.production_url: must be an http\(s\) URL"):
        app.at("ftp://example.com")


def test_the_rollback_command_is_rendered() -> None:
    app = parse_app_config(table())
    assert (
        app.rollback(release="2026-01-01-a", version=3, merge_sha="abc123")
        == "git revert -m 1 abc123 && bin/deploy 2026-01-01-a"
    )
    assert app.rollback(release="r", version=None, merge_sha=None) == (
        "git revert -m 1 <merge_sha> && bin/deploy r"
    )
    assert (
        parse_app_config(table(rollback_command=None)).rollback(
            release="r", version=1, merge_sha="s"
        )
        is None
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"smoke": [{"path": "signin"}]}, r"app\.smoke\.0\.path: must start with '/'"),
        ({"health_path": "up"}, r"app\.health_path: must start with '/'"),
        (
            {"rollback_command": "git revert {sha}"},
            r"app\.rollback_command: uses unknown placeholder \{sha\}; allowed: \{merge_sha\}",
        ),
        (
            {"rollback_command": "deploy {release"},
            r"app\.rollback_command: is not a valid template",
        ),
        ({"production_url": "app.example.com"}, r"app\.production_url: must be an http\(s\) URL"),
        ({"production_url": "https://"}, r"app\.production_url: must be an http\(s\) URL"),
        ({"smoke": [{"path": "/", "expect_status": 999}]}, r"app\.smoke\.0\.expect_status"),
        ({"smoke": [{"path": "/", "timeout": 0}]}, r"app\.smoke\.0\.timeout"),
        ({"smoke": [{"path": "/", "selecter": "form"}]}, r"app\.smoke\.0\.selecter: Extra inputs"),
        ({"smok": []}, r"app\.smok: Extra inputs are not permitted"),
        ({"health_timeout": -1}, r"app\.health_timeout"),
    ],
)
def test_a_bad_table_names_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SmokeConfigError, match=message):
        parse_app_config(table(**overrides))


def test_a_missing_production_url_is_named() -> None:
    bad = table()
    del bad["production_url"]
    with pytest.raises(SmokeConfigError, match=r"^app\.production_url: Field required$"):
        parse_app_config(bad)


def test_several_problems_are_all_named() -> None:
    with pytest.raises(SmokeConfigError) as raised:
        parse_app_config(table(production_url="nope", smoke=[{"path": "x"}]))
    assert "app.production_url" in str(raised.value) and "app.smoke.0.path" in str(raised.value)


def test_no_table_and_not_a_table() -> None:
    with pytest.raises(SmokeConfigError, match=r"no \[app\] table"):
        parse_app_config(None)
    with pytest.raises(SmokeConfigError, match=r"\[app\] must be a table, not list"):
        parse_app_config([1, 2])  # type: ignore[arg-type]


def test_load_app_config_reads_the_toml_file(tmp_path: Path) -> None:
    file = tmp_path / "conductor.toml"
    file.write_text(
        """
guild_id = 1

[app]
name = "studio"
production_url = "https://app.example.com"
rollback_command = "git revert -m 1 {merge_sha} && bin/deploy"

[[app.smoke]]
path = "/"
expect_text = "Studio"

[[app.smoke]]
path = "/devops"
expect_status = 404
timeout = 5
""",
        encoding="utf-8",
    )
    app = load_app_config(file)
    assert isinstance(app, AppConfig)
    assert [(c.path, c.expect_status, c.timeout) for c in app.smoke] == [
        ("/", 200, 15.0),
        ("/devops", 404, 5.0),
    ]


def test_load_app_config_problems_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(SmokeConfigError, match=f"{missing}: no such file"):
        load_app_config(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[app\nname = 1", encoding="utf-8")
    with pytest.raises(SmokeConfigError, match="not valid TOML"):
        load_app_config(broken)
    empty = tmp_path / "empty.toml"
    empty.write_text("guild_id = 1\n", encoding="utf-8")
    with pytest.raises(SmokeConfigError, match=r"no \[app\] table"):
        load_app_config(empty)
