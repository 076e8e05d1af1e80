"""Every kind of run, in the order they are offered: what the bootstrap gives the driver."""

from __future__ import annotations

from conductor.releases.runs.redeploy import Redeploy
from conductor.releases.runs.rollback import Rollback
from conductor.releases.runs.ship import Ship

KINDS = (Ship, Rollback, Redeploy)
