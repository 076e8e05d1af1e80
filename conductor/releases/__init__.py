"""Releases: the release service (``service``: open, add, remove, assemble, the flip, abandon,
status) and the ship pipeline (``pipeline``: the flip, the seal, the notes)."""
