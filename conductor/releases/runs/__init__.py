"""Runs: a ship, a rollback, a redeploy, each a persisted run of steps driven by one
:class:`~conductor.releases.runs.driver.Driver`.

``store`` (the runs and their steps in the database, the lease), ``driver`` (the loop, the
end, what is owed, a kind's declaration), ``sink`` (where the words go), ``steps`` (the deploy,
the health gate, a seal, an outcome posted once: shared by kinds), then one module per kind:
``ship``, ``rollback``, ``redeploy``, listed in ``kinds``. No kind imports another."""
