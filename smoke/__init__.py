"""The production smoke seal: read-only checks in real Chromium, a plain result.

No Discord and no database here: the domain records the result, the cogs show it.
Every name below loads on first use (PEP 562): ``smoke.runner`` brings Playwright and httpx,
``smoke.config`` pydantic, and ``smoke.driver`` must be importable alone, before either (the
console script starts Playwright's driver first: :func:`smoke.driver.start_early`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smoke.config import (
        AppConfig,
        SmokeCheck,
        SmokeConfigError,
        load_app_config,
        parse_app_config,
    )
    from smoke.protocol import OnCheck, SmokeRunner
    from smoke.result import BlockedRequest, CheckResult, SmokeResult, Verdict
    from smoke.runner import PlaywrightRunner

#: each name this package offers, and the module it comes from
_WHERE = {
    "AppConfig": "smoke.config",
    "SmokeCheck": "smoke.config",
    "SmokeConfigError": "smoke.config",
    "load_app_config": "smoke.config",
    "parse_app_config": "smoke.config",
    "OnCheck": "smoke.protocol",
    "SmokeRunner": "smoke.protocol",
    "BlockedRequest": "smoke.result",
    "CheckResult": "smoke.result",
    "SmokeResult": "smoke.result",
    "Verdict": "smoke.result",
    "PlaywrightRunner": "smoke.runner",
}

__all__ = [
    "AppConfig",
    "BlockedRequest",
    "CheckResult",
    "OnCheck",
    "PlaywrightRunner",
    "SmokeCheck",
    "SmokeConfigError",
    "SmokeResult",
    "SmokeRunner",
    "Verdict",
    "load_app_config",
    "parse_app_config",
]


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'smoke' has no attribute {name!r}")
