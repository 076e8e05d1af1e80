"""The crash matrix of ``test_crash.py``, every test of it, on PostgreSQL: a file of its own so
that ``--dist loadfile`` runs it on another worker than the SQLite half."""

from __future__ import annotations

import pytest

from tests.conductor.releases.test_crash import *  # noqa: F403 - the same tests, fixtures and all

pytestmark = pytest.mark.backends("postgresql")
