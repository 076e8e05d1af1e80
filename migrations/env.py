"""Alembic environment for Conductor (async, SQLite batch mode).

The database URL comes from, first match wins: ``-x url=...`` on the alembic command line,
``config.attributes["url"]`` (set by :mod:`store.migrate`), ``sqlalchemy.url`` in the
config, the ``CONDUCTOR_DATABASE_URL`` environment variable, then
:data:`store.db.DEFAULT_DATABASE_URL`. A caller may also hand over an open synchronous
connection as ``config.attributes["connection"]``; it is then used as is.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql.type_api import TypeEngine

import store.models
from store.db import DEFAULT_DATABASE_URL

config = context.config

# Set up logging from the ini file, unless the caller (a running bot, the CLI) keeps its own.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = store.models.Base.metadata

#: the module holding the project's own column types; rendered as ``store.types.X()``
_TYPES_MODULE = "store.types"


def database_url() -> str:
    x_url = context.get_x_argument(as_dictionary=True).get("url")
    if x_url:
        return x_url
    attribute_url = config.attributes.get("url")
    if attribute_url:
        return str(attribute_url)
    main_url = config.get_main_option("sqlalchemy.url")
    if main_url:
        return main_url
    return os.environ.get("CONDUCTOR_DATABASE_URL") or DEFAULT_DATABASE_URL


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the project's TypeDecorators importably: ``store.types.UTCDateTime()``."""
    if type_ == "type" and isinstance(obj, TypeEngine) and type(obj).__module__ == _TYPES_MODULE:
        autogen_context.imports.add(f"import {_TYPES_MODULE}")
        return f"{_TYPES_MODULE}.{type(obj).__name__}()"
    return False


def _configure_options() -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "render_as_batch": True,  # SQLite cannot ALTER most things: copy-and-move instead
        "compare_type": True,
        "render_item": render_item,
    }


def run_migrations_offline() -> None:
    """Emit the SQL as a script instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=database_url(),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **_configure_options())
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        do_run_migrations(given)
        return
    url = database_url()
    if make_url(url).get_dialect().is_async:
        asyncio.run(run_async_migrations(url))
    else:
        # A plain synchronous URL (sqlite:///...) works too.
        engine = create_engine(url, poolclass=pool.NullPool)
        try:
            with engine.connect() as connection:
                do_run_migrations(connection)
        finally:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
