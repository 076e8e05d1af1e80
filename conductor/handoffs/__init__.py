"""Handoffs: the parser (``parse``, pure text) and the applier (``apply``, the raw row and the
task's move, many messages per transaction)."""
