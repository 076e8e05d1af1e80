"""Conductor's domain: states, the handoff parser, the release service, reviews.

Nothing in this package imports ``discord``; the cogs translate between Discord and it.
"""
