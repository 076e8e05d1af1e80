"""The test's side of the stand-in: people and agents acting in the guild (posts as a user,
through a webhook, as another bot; reactions; slash commands built from what the bot synced;
buttons; modals), what the channels show, the gateway dropped and held; and the real bot as a
process of its own (``python -m cli run``)."""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from e2e.standin import EPHEMERAL, LOADING, Interaction, Json, StandIn

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
#: how often a wait looks again
POLL_S = 0.05
#: how long a wait for the bot (an answer, a state, a message, its start) lasts at most, in
#: seconds: an outer bound, each wait ends as soon as what it waits for is there
WAIT_S = 120.0


class Timeout(AssertionError):
    """A wait ran out; the message says for what."""


class Driver:
    def __init__(self, standin: StandIn) -> None:
        self.s = standin

    # ------------------------------------------------------------------ the world

    def user(self, name: str, *, bot: bool = False, roles: tuple[int, ...] = ()) -> int:
        def make() -> int:
            uid = self.s.add_user(name, bot=bot)
            self.s.add_member(uid, roles=list(roles))
            return uid

        return self.s.call(make)

    def role(self, name: str, *, mentionable: bool = False) -> int:
        return self.s.call(lambda: self.s.add_role(name, mentionable=mentionable))

    def channel(self, name: str) -> int:
        return self.s.call(lambda: self.s.add_text_channel(name))

    def webhook(self, channel_id: int, name: str) -> int:
        return self.s.call(lambda: self.s.add_webhook(channel_id, name))

    # ------------------------------------------------------------------ acting

    def post(
        self, channel_id: int, author_id: int, content: str, *, reply_to: Json | None = None
    ) -> Json:
        """A message from a member (a person, or a bot user); with ``reply_to``, a reply to
        that message (a ``message_reference`` to it, as Discord's client sends one)."""
        reference = (
            {"message_id": reply_to["id"], "channel_id": reply_to["channel_id"]}
            if reply_to is not None
            else None
        )
        return self.s.call(
            lambda: self.s.new_message(
                channel_id, self.s.users[author_id], content, reference=reference
            )
        )

    def post_webhook(self, webhook_id: int, content: str, *, username: str) -> Json:
        """A message through a channel's webhook, under ``username``."""

        def send() -> Json:
            hook = self.s.webhooks[webhook_id]
            author = {
                "id": hook["id"],
                "username": username,
                "discriminator": "0000",
                "avatar": None,
                "bot": True,
            }
            return self.s.new_message(
                int(hook["channel_id"]), author, content, webhook_id=webhook_id
            )

        return self.s.call(send)

    def react(self, user_id: int, message: Json, emoji: str, *, on: bool = True) -> None:
        self.s.call(lambda: self.s.set_reaction(message, emoji, user_id, on))

    def slash(self, user_id: int, channel_id: int, command: str, /, **options: Any) -> int:
        """``/command`` with ``options``, as Discord builds it from the commands the bot
        synced. Returns the interaction's id."""

        def send() -> Interaction:
            words = command.split()
            top = next((c for c in self.s.commands if c["name"] == words[0]), None)
            if top is None:
                raise AssertionError(f"the bot synced no /{words[0]}")
            node, path = top, []
            for word in words[1:]:
                child = next(
                    (
                        o
                        for o in node.get("options") or []
                        if o["name"] == word and o["type"] in (1, 2)
                    ),
                    None,
                )
                if child is None:
                    raise AssertionError(f"/{command}: no subcommand {word!r}")
                path.append(child)
                node = child
            leaf_options = []
            for option in node.get("options") or []:
                if option["name"] in options:
                    leaf_options.append(
                        {
                            "type": option["type"],
                            "name": option["name"],
                            "value": options.pop(option["name"]),
                        }
                    )
                elif option.get("required"):
                    raise AssertionError(f"/{command}: {option['name']} is required")
            if options:
                raise AssertionError(f"/{command}: no options {sorted(options)}")
            nested: list[Json] = leaf_options
            for child in reversed(path):
                nested = [{"type": child["type"], "name": child["name"], "options": nested}]
            data = {
                "id": top["id"],
                "name": top["name"],
                "type": 1,
                "guild_id": str(self.s.guild_id),
            }
            if nested:
                data["options"] = nested
            return self._interact(2, user_id, channel_id, data)

        return self.s.call(send).id

    def click(self, user_id: int, message: Json, label: str) -> int:
        """Press the button labelled ``label`` on ``message``. Returns the interaction's id."""

        def send() -> Interaction:
            current = self.s.find_message(int(message["id"]))
            assert current is not None, "the message is gone"
            for row in current["components"]:
                for button in row.get("components", []):
                    if button.get("label") == label and button.get("type") == 2:
                        if button.get("disabled"):
                            raise AssertionError(f"the {label!r} button is disabled")
                        data = {"custom_id": button["custom_id"], "component_type": 2}
                        return self._interact(
                            3, user_id, int(current["channel_id"]), data, message=current
                        )
            raise AssertionError(f"no {label!r} button on the message")

        return self.s.call(send).id

    def select(self, user_id: int, message: Json, values: list[str]) -> int:
        """Choose ``values`` in the string select on ``message`` (an ephemeral answer too), as
        Discord sends it: a component interaction of type 3 carrying the values. Fails as the
        client would not let it happen: no select, a disabled one, a value it does not offer,
        fewer or more values than it takes. Returns the interaction's id."""

        def send() -> Interaction:
            current = self.s.find_message(int(message["id"]))
            assert current is not None, "the message is gone"
            selects = [
                c
                for row in current["components"]
                for c in row.get("components", [])
                if c.get("type") == 3
            ]
            assert len(selects) == 1, f"{len(selects)} string selects on the message"
            [menu] = selects
            if menu.get("disabled"):
                raise AssertionError("the select is disabled")
            offered = [o["value"] for o in menu.get("options") or []]
            unknown = [v for v in values if v not in offered]
            assert not unknown, f"the select offers {offered}, not {unknown}"
            low, high = menu.get("min_values", 1), menu.get("max_values", 1)
            assert low <= len(values) <= high, f"the select takes {low} to {high} values"
            data = {"custom_id": menu["custom_id"], "component_type": 3, "values": list(values)}
            return self._interact(3, user_id, int(current["channel_id"]), data, message=current)

        return self.s.call(send).id

    def submit_modal(self, user_id: int, interaction_id: int, values: dict[str, str]) -> int:
        """Submit the modal the bot answered ``interaction_id`` with."""

        def send() -> Interaction:
            asked = self.s.interactions[interaction_id]
            modal = asked.modal
            assert modal is not None, "the bot answered with no modal"
            components = []
            for top in modal["components"]:
                if top["type"] == 1:
                    components.append(
                        {
                            "type": 1,
                            "components": [
                                {
                                    "type": 4,
                                    "custom_id": c["custom_id"],
                                    "value": values.get(c["custom_id"], ""),
                                }
                                for c in top["components"]
                            ],
                        }
                    )
                elif top["type"] == 18:
                    inner = top["component"]
                    components.append(
                        {
                            "type": 18,
                            "component": {
                                "type": inner["type"],
                                "custom_id": inner["custom_id"],
                                "value": values.get(inner["custom_id"], ""),
                            },
                        }
                    )
            data = {"custom_id": modal["custom_id"], "components": components}
            message = self.s.find_message(asked.message_id) if asked.message_id else None
            return self._interact(5, user_id, asked.channel_id, data, message=message)

        return self.s.call(send).id

    def _interact(
        self, kind: int, user_id: int, channel_id: int, data: Json, *, message: Json | None = None
    ) -> Interaction:
        s = self.s
        interaction = Interaction(
            id=s.snowflake(),
            token=secrets.token_urlsafe(32),
            type=kind,
            user_id=user_id,
            channel_id=channel_id,
            created=time.monotonic(),
            data=data,
            message_id=int(message["id"]) if message is not None else None,
        )
        member = s.members[user_id]
        permissions = 0
        for role_id in [s.guild_id, *(int(r) for r in member["roles"])]:
            permissions |= int(s.roles[role_id]["permissions"])
        payload: Json = {
            "id": str(interaction.id),
            "application_id": str(s.app_id),
            "type": kind,
            "data": data,
            "guild_id": str(s.guild_id),
            "channel_id": str(channel_id),
            "channel": s.channels[channel_id],
            "member": {**member, "permissions": str(permissions)},
            "token": interaction.token,
            "version": 1,
            "app_permissions": str(permissions),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(s.guild_id)},
            "context": 0,
            "attachment_size_limit": 25 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = s.public(message)
        s.interactions[interaction.id] = interaction
        s.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # ------------------------------------------------------------------ reading

    def messages(self, channel_id: int, *, ephemeral: bool = True) -> list[Json]:
        """The channel's messages, oldest first (copies)."""

        def read() -> list[Json]:
            return [
                self.s.public(m) | {k: v for k, v in m.items() if k.startswith("_")}
                for m in self.s.messages.get(channel_id, [])
                if ephemeral or not m["flags"] & EPHEMERAL
            ]

        return self.s.call(read)

    def message(self, message_id: int) -> Json:
        def read() -> Json:
            found = self.s.find_message(message_id)
            assert found is not None, f"no message {message_id}"
            return self.s.public(found) | {k: v for k, v in found.items() if k.startswith("_")}

        return self.s.call(read)

    def answers(self, interaction_id: int) -> list[Json]:
        """What the bot answered an interaction with: the original response (once it is no
        longer "thinking"), then the followups, oldest first."""

        def read() -> list[Json]:
            found = []
            for messages in self.s.messages.values():
                for m in messages:
                    meta = m.get("interaction_metadata") or {}
                    if meta.get("id") == str(interaction_id) and not m["flags"] & LOADING:
                        found.append(
                            self.s.public(m) | {k: v for k, v in m.items() if k.startswith("_")}
                        )
            return sorted(found, key=lambda m: int(m["id"]))

        return self.s.call(read)

    def interaction(self, interaction_id: int) -> Interaction:
        return self.s.call(lambda: self.s.interactions[interaction_id])

    def reactions(self, message_id: int, emoji: str) -> list[int]:
        return self.s.call(lambda: list(self.s.reactions.get(message_id, {}).get(emoji, [])))

    def threads(self, parent_id: int) -> dict[str, int]:
        def read() -> dict[str, int]:
            return {
                c["name"]: int(c["id"])
                for c in self.s.channels.values()
                if c["type"] in (11, 12) and c.get("parent_id") == str(parent_id)
            }

        return self.s.call(read)

    def calls(self, method: str, template: str, *, status: int | None = None) -> int:
        """How many REST requests the bot made on ``template``."""
        return self.s.call(
            lambda: sum(
                1
                for c in self.s.calls
                if c.method == method
                and c.template == template
                and (status is None or c.status == status)
            )
        )

    def failures(self) -> list[str]:
        return self.s.call(lambda: [str(f) for f in self.s.failures])

    def callbacks(self, interaction_id: int) -> list[int]:
        """The status of each initial response the bot sent to the interaction, in order
        (with ``twin_sessions``, one 200 and the 400s of the processes that lost the race)."""
        return self.s.call(
            lambda: [
                c.status
                for c in self.s.calls
                if c.template == "/interactions/{interaction_id}/{interaction_token}/callback"
                and c.path.startswith(f"/interactions/{interaction_id}/")
            ]
        )

    # ------------------------------------------------------------------ gates

    def hold_posts(self, channel_id: int) -> None:
        """The bot's posts in the channel wait at a gate until :meth:`release_posts`."""
        self.s.call(lambda: self.s.hold("POST", f"/channels/{channel_id}/messages"))

    def release_posts(self, channel_id: int) -> None:
        self.s.call(lambda: self.s.release("POST", f"/channels/{channel_id}/messages"))

    def posts_waiting(self, channel_id: int) -> int:
        """How many of the bot's posts in the channel wait at its gate now."""
        return len(self.s.call(lambda: self.s.waiting("POST", f"/channels/{channel_id}/messages")))

    def hold_answers(self) -> None:
        """The bot's first answers to interactions wait at a gate until
        :meth:`release_answers`."""
        self.s.call(lambda: self.s.hold("POST", "/interactions/"))

    def answers_waiting(self) -> list[Json]:
        """The bodies of the bot's first answers waiting at the gate, in arrival order."""
        return self.s.call(lambda: self.s.waiting("POST", "/interactions/"))

    def release_answers(self, matching: Callable[[Json], bool] | None = None) -> int:
        """Let the answers waiting whose body is ``matching`` through (all of them and open
        the gate, without ``matching``); how many went."""
        return self.s.call(lambda: self.s.release("POST", "/interactions/", matching))

    # ------------------------------------------------------------------ the gateway

    def drop_gateway(self, *, hold: bool = True) -> None:
        self.s.run(self.s.drop_gateway(hold=hold))

    def release_gateway(self) -> None:
        self.s.call(self.s.release_gateway)

    # ------------------------------------------------------------------ waiting

    def wait_for(self, check: Callable[[], T | None], what: str, *, timeout: float = WAIT_S) -> T:
        """Poll ``check`` until it gives something truthy; :class:`Timeout` naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            got = check()
            if got:
                return got
            if time.monotonic() > deadline:
                raise Timeout(f"waited {timeout:g} s for {what}")
            time.sleep(POLL_S)

    def said(self, interaction_id: int) -> str:
        """The one answer to the interaction, its text and embeds (waited for)."""
        [message] = self.wait_answer(interaction_id)
        parts = [message["content"]]
        for embed in message["embeds"]:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            parts += [f"{f['name']} {f['value']}" for f in embed.get("fields") or []]
        return "\n".join(parts)

    def wait_answer(
        self, interaction_id: int, *, count: int = 1, timeout: float = WAIT_S
    ) -> list[Json]:
        def enough() -> list[Json] | None:
            found = self.answers(interaction_id)
            return found if len(found) >= count else None

        return self.wait_for(
            enough, f"{count} answer(s) to interaction {interaction_id}", timeout=timeout
        )


class BotProcess:
    """``python -m cli run`` in a process of its own, its output in ``log``."""

    _numbers = itertools.count(1)

    def __init__(self, workdir: Path, env: dict[str, str], *, module: str = "cli") -> None:
        self.workdir = workdir
        self.env = env
        #: the module run as ``python -m MODULE run`` (a benchmark's wrapper of ``cli``)
        self.module = module
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "bot-0.log"

    def start(self) -> None:
        self.log = self.workdir / f"bot-{next(self._numbers)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT)
        env["HOME"] = str(self.workdir)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - this interpreter, our module
                [sys.executable, "-m", self.module, "run"],
                cwd=self.workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def board_url(self) -> str:
        """The ``/deployments`` page of this run of the bot (it picks a free port and logs
        it; the last start's line)."""
        said = "the /deployments board is at "
        lines = [line for line in self.output().splitlines() if said in line]
        assert lines, "the bot did not start its board"
        return lines[-1].split(said, 1)[1].strip()

    def wait_ready(self, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while "ready as " not in self.output():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"the bot exited ({self.proc.returncode}):\n{self.output()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise Timeout(f"the bot was not ready in {timeout:g} s:\n{self.output()[-3000:]}")
            time.sleep(POLL_S)

    def wait_log(self, said: str, timeout: float = WAIT_S) -> None:
        """Until ``said`` is in the log of this run of the bot; fails at once if it exits."""
        deadline = time.monotonic() + timeout
        while said not in self.output():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the bot exited:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise Timeout(f"waited {timeout:g} s for {said!r} in {self.log}")
            time.sleep(POLL_S)

    def kill(self) -> None:
        """SIGKILL: no goodbye, nothing flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def errors(self) -> list[str]:
        """Tracebacks and ERROR lines in the bot's log."""
        return [
            line
            for line in self.output().splitlines()
            if " ERROR " in line or line.startswith("Traceback")
        ]
