"""Releases: the release service (``service``: open, add, remove, assemble, the flip, abandon,
status), its assembly, git and the deploy, the lock, the notes owed (``publisher``) and the runs
(``runs``: ship, rollback, redeploy, one driver)."""
