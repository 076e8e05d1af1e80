"""axe-core in real Chromium: the accessibility checks the board's pages are held to.

axe-core is the npm package pinned in ``package.json`` (``npm ci`` at the repository root, which
``make test`` runs, puts it in ``node_modules/``). The board's Content-Security-Policy forbids
any script but its own, so the pages are opened in a context that bypasses it
(``bypass_csp=True``) for axe's injection.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.helpers import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def axe_script() -> Path:
    """axe-core's script; without it a skip that says how to install it (a failure in CI)."""
    if not AXE.is_file():
        why = f"axe-core is not installed ({AXE} missing): run `npm ci` at the repository root"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return AXE


async def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on what ``page`` shows (its context made with ``bypass_csp``)."""
    await page.add_script_tag(path=str(axe_script()))
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
            }));
        }"""
    )
    return found
