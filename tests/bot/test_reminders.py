"""The operators named in a reminder, as text: the role, a role the server lacks, or Manage
Server when none is configured (the role itself is read through simcord in
``tests/cogs/test_reminders_cog.py``)."""

from __future__ import annotations

from bot.bindings import Binding, Bindings
from bot.reminders import operators_in_words


def bindings(wanted: Binding) -> Bindings:
    return Bindings(
        handoff_channel_ids=frozenset(),
        reviews_channel=None,
        notes_channel=None,
        deployments_channel=None,
        operator_role=None,
        reviewer_role=None,
        wanted={"operator role": wanted},
    )


def test_no_operator_role_means_manage_server() -> None:
    assert operators_in_words(bindings(Binding(None, "unset"))) == "anyone with Manage Server"


def test_a_role_the_server_lacks_is_named_as_configured_and_cannot_break_the_code_span() -> None:
    assert operators_in_words(bindings(Binding("Release `ops`", "config"))) == (
        "an operator (the `Release 'ops'` role, missing in this server)"
    )
