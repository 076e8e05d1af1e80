"""The test's own look at the bot's PostgreSQL database (a cluster of ``tests/postgres.py``),
through a synchronous connection of its own, as another process would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text

from tests.helpers import sync_url


def execute(url: str, statement: str, **params: Any) -> None:
    """Run ``statement`` (``:name`` parameters) and commit it."""
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        engine.dispose()


def rows(url: str, query: str, **params: Any) -> list[tuple[Any, ...]]:
    """What ``query`` (``:name`` parameters) reads now."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(query), params)]
    finally:
        engine.dispose()
