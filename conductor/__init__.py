"""Conductor's domain, grouped by feature: handoffs, reviews, releases (with their
runs: ship, rollback, redeploy), seals, tasks, guilds; their words (``states``, ``errors``, ``text``, ``views``);
and ``bootstrap``, which builds it all once.

Nothing in this package imports ``discord``: it speaks outward through small protocols
(``smoke.protocol.SmokeRunner``, ``conductor.releases.runs.sink.NotesSink``).
"""
