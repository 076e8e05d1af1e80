"""One sample "production" for the whole smoke suite, on its own thread, healed per test."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from smoke import AppConfig, parse_app_config
from smoke.sample_app import SampleApp, sample_app_table, serve_in_thread


@pytest.fixture(scope="session")
def _sample_server() -> Iterator[SampleApp]:
    with serve_in_thread() as app:
        yield app


@pytest.fixture
def sample_app(_sample_server: SampleApp) -> Iterator[SampleApp]:
    """The shared sample app, healthy and with its counters at zero (and left that way)."""
    app = _sample_server
    app.heal()
    app.reset_counters()
    app.slow_seconds = 5.0
    yield app
    app.heal()
    app.reset_counters()
    app.slow_seconds = 5.0


def suite(url: str, **overrides: Any) -> AppConfig:
    """The sample app's ``[app]`` table at ``url``, validated, with ``overrides``."""
    return parse_app_config(sample_app_table(url, **overrides))


@pytest.fixture
def dead_url() -> str:
    """A base URL where nothing listens (the port was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
