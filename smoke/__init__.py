"""The production smoke seal: read-only checks in real Chromium, a plain result.

No Discord and no database here: the domain records the result, the cogs show it.
"""

from smoke.config import AppConfig, SmokeCheck, SmokeConfigError, load_app_config, parse_app_config
from smoke.result import CheckResult, SmokeResult, Verdict

__all__ = [
    "AppConfig",
    "CheckResult",
    "SmokeCheck",
    "SmokeConfigError",
    "SmokeResult",
    "Verdict",
    "load_app_config",
    "parse_app_config",
]
