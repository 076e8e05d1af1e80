"""The production smoke seal: read-only checks in real Chromium, a plain result.

No Discord and no database here: the domain records the result, the cogs show it.
``PlaywrightRunner`` (``smoke.runner``) loads Playwright and httpx on first use, so importing
``smoke`` for the config and the result stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smoke.config import AppConfig, SmokeCheck, SmokeConfigError, load_app_config, parse_app_config
from smoke.protocol import OnCheck, SmokeRunner
from smoke.result import BlockedRequest, CheckResult, SmokeResult, Verdict

if TYPE_CHECKING:
    from smoke.runner import PlaywrightRunner

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
    if name == "PlaywrightRunner":
        from smoke.runner import PlaywrightRunner  # noqa: PLC0415 - loaded on first use

        return PlaywrightRunner
    raise AttributeError(f"module 'smoke' has no attribute {name!r}")
