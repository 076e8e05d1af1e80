"""The stand-in itself, without the bot: what it refuses and records is what the flows rely on
to fail. Plain HTTP on 127.0.0.1 (httpx), as discord.py would send it."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator

import httpx
import pytest

from e2e.driver import Driver
from e2e.spec import SPEC_PATH, shared_spec_path
from e2e.standin import RATE_LIMIT_EVERY, Json, StandIn

TOKEN = "standin.test-token"  # noqa: S105 - the stand-in's own


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    s = StandIn(TOKEN)
    s.start()
    s.call(lambda: s.create_guild(99, "Test"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def client(standin: StandIn) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{standin.url}/api/v10", headers={"Authorization": f"Bot {TOKEN}"}
    ) as c:
        yield c


def _new_failures(standin: StandIn, since: int) -> list[str]:
    return standin.call(lambda: [str(f) for f in standin.failures[since:]])


def test_a_body_the_spec_refuses_is_recorded(standin: StandIn, client: httpx.Client) -> None:
    channel = Driver(standin).channel("general")
    before = len(standin.failures)
    bad = client.post(f"/channels/{channel}/messages", json={"content": 5, "embeds": "no"})
    found = _new_failures(standin, before)
    assert bad.status_code == 400
    assert bad.json()["code"] == 50035
    assert any("content: 5 is not of type" in f for f in found), found
    assert any("embeds: 'no' is not of type" in f for f in found), found
    assert all(f.startswith("[spec] POST /channels/") for f in found)


def test_a_valid_body_with_integer_snowflakes_passes(
    standin: StandIn, client: httpx.Client
) -> None:
    """discord.py writes some snowflakes as integers; the spec's SnowflakeType is a string."""
    channel = Driver(standin).channel("general")
    first = client.post(f"/channels/{channel}/messages", json={"content": "one"}).json()
    before = len(standin.failures)
    reply = client.post(
        f"/channels/{channel}/messages",
        json={
            "content": "two",
            "allowed_mentions": {"parse": [], "users": [int(first["author"]["id"])]},
            "message_reference": {"message_id": int(first["id"]), "fail_if_not_exists": False},
        },
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "application/json"
    assert _new_failures(standin, before) == []


def test_a_multipart_payload_json_is_validated(standin: StandIn, client: httpx.Client) -> None:
    channel = Driver(standin).channel("general")
    before = len(standin.failures)
    sent = client.post(
        f"/channels/{channel}/messages",
        files={
            "payload_json": (None, json.dumps({"content": ["not", "text"]}), "application/json"),
            "files[0]": ("shot.png", b"\x89PNG....", "image/png"),
        },
    )
    assert sent.status_code == 400
    [found] = _new_failures(standin, before)
    assert "content: ['not', 'text'] is not of type" in found
    taken = client.post(
        f"/channels/{channel}/messages",
        files={
            "payload_json": (None, json.dumps({"content": "shots"}), "application/json"),
            "files[0]": ("shot.png", b"\x89PNG....", "image/png"),
        },
    )
    assert taken.status_code == 200, taken.text
    attachment = taken.json()["attachments"][0]
    assert attachment["filename"] == "shot.png"
    assert httpx.get(attachment["url"]).content == b"\x89PNG...."


def test_an_unknown_route_is_recorded(standin: StandIn, client: httpx.Client) -> None:
    before = len(standin.failures)
    assert client.get("/channels/1/not-a-route").status_code == 404
    assert client.post("/guilds/99/bulk-ban", json={"user_ids": []}).status_code == 404
    found = _new_failures(standin, before)
    assert found[0].startswith("[unknown-route] GET /channels/1/not-a-route: not in Discord's spec")
    assert found[1].startswith("[unknown-route] POST /guilds/99/bulk-ban: not served")


@pytest.mark.parametrize(
    ("body", "status", "why"),
    [
        ({"content": "x" * 2001}, 400, "content is 2001 characters"),
        (
            {
                "embeds": [
                    {"title": "t" * 256, "description": "d" * 4096},
                    {"description": "e" * 1700},
                ]
            },
            400,
            "embeds total 6052 characters",
        ),
    ],
)
def test_discords_limits_are_refused_and_recorded(
    standin: StandIn, client: httpx.Client, body: dict[str, object], status: int, why: str
) -> None:
    channel = Driver(standin).channel("general")
    before = len(standin.failures)
    answer = client.post(f"/channels/{channel}/messages", json=body)
    assert answer.status_code == status
    assert answer.json()["code"] == 50035
    [found] = _new_failures(standin, before)
    assert why in found


def test_an_attachment_over_25_mb_is_refused(standin: StandIn, client: httpx.Client) -> None:
    channel = Driver(standin).channel("general")
    before = len(standin.failures)
    answer = client.post(
        f"/channels/{channel}/messages",
        files={
            "payload_json": (None, "{}", "application/json"),
            "files[0]": ("big.bin", b"\0" * (25 * 1024 * 1024 + 1), "application/octet-stream"),
        },
    )
    assert answer.status_code == 413
    [found] = _new_failures(standin, before)
    assert "attachments of 26214401 bytes" in found


def test_every_nth_request_of_a_route_is_rate_limited(
    standin: StandIn, client: httpx.Client
) -> None:
    channel = Driver(standin).channel("general")
    statuses = []
    for n in range(RATE_LIMIT_EVERY * 2):
        answer = client.post(f"/channels/{channel}/messages", json={"content": f"m{n}"})
        statuses.append(answer.status_code)
        for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset-After"):
            assert header in answer.headers
        if answer.status_code == 429:
            assert answer.json()["retry_after"] > 0
            assert answer.headers["Via"]  # discord.py treats a 429 without it as Cloudflare's
    assert [i for i, s in enumerate(statuses) if s == 429] == [
        RATE_LIMIT_EVERY - 1,
        RATE_LIMIT_EVERY * 2 - 1,
    ]
    # a 429 is not taken: the messages that were refused do not exist
    texts = [m["content"] for m in Driver(standin).messages(channel)]
    assert f"m{RATE_LIMIT_EVERY - 1}" not in texts
    assert "m0" in texts


def test_an_interaction_takes_one_initial_response(standin: StandIn, client: httpx.Client) -> None:
    d = Driver(standin)
    channel = d.channel("general")
    user = d.user("olga")
    standin.call(
        lambda: standin.commands.append({"id": "1", "name": "ping", "type": 1, "options": []})
    )
    iid = d.slash(user, channel, "ping")
    token = d.interaction(iid).token
    before = len(standin.failures)
    first = client.post(f"/interactions/{iid}/{token}/callback", json={"type": 5, "data": {}})
    assert first.status_code == 200, first.text
    assert first.json()["interaction"]["response_message_loading"] is True
    second = client.post(
        f"/interactions/{iid}/{token}/callback", json={"type": 4, "data": {"content": "again"}}
    )
    assert second.status_code == 400
    assert second.json()["code"] == 40060
    [found] = _new_failures(standin, before)
    assert found.startswith("[interaction]") and "a second initial response" in found
    edited = client.patch(
        f"/webhooks/{standin.app_id}/{token}/messages/@original", json={"content": "done"}
    )
    assert edited.status_code == 200
    assert [m["content"] for m in d.answers(iid)] == ["done"]


PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def _edit(client: httpx.Client, path: str, payload: dict[str, object], **files: bytes) -> Json:
    sent = client.patch(
        path,
        files={
            "payload_json": (None, json.dumps(payload), "application/json"),
            **{n: (f"{n[6]}.png", b, "application/octet-stream") for n, b in files.items()},
        },
    )
    assert sent.status_code == 200, sent.text
    return dict(sent.json())


def test_a_deferred_answer_is_edited_with_files_as_discord_documents(
    standin: StandIn, client: httpx.Client
) -> None:
    """The multipart edit of a deferred answer (discord.py's ``edit_original_response`` with
    attachments): its ``payload_json`` checked against the spec, each ``files[n]`` named by
    an ``attachments`` entry of id ``n`` (its description kept), the media type and an
    image's size Discord's own; an edit that lists attachments keeps only those (new and
    earlier), one that lists none keeps them all. A multipart body where the spec describes
    JSON alone is refused."""
    d = Driver(standin)
    channel = d.channel("general")
    user = d.user("pia")
    standin.call(
        lambda: standin.commands.append({"id": "4", "name": "chart", "type": 1, "options": []})
    )
    iid = d.slash(user, channel, "chart")
    token = d.interaction(iid).token
    assert client.post(f"/interactions/{iid}/{token}/callback", json={"type": 5}).is_success
    original = f"/webhooks/{standin.app_id}/{token}/messages/@original"
    before = len(standin.failures)
    first = _edit(
        client,
        original,
        {"content": "drawn", "attachments": [{"id": 0, "filename": "0.png", "description": "A"}]},
        **{"files[0]": PNG_1X1},
    )
    [chart] = first["attachments"]
    assert (chart["filename"], chart["description"]) == ("0.png", "A")
    assert (chart["content_type"], chart["width"], chart["height"]) == ("image/png", 1, 1)
    assert httpx.get(chart["url"]).content == PNG_1X1
    assert [m["content"] for m in d.answers(iid)] == ["drawn"]  # no longer loading
    # the earlier one listed by its id, one new file listed, one not: the unlisted is dropped
    second = _edit(
        client,
        original,
        {"attachments": [{"id": chart["id"]}, {"id": 1, "filename": "1.png"}]},
        **{"files[1]": PNG_1X1, "files[2]": PNG_1X1},
    )
    assert [a["filename"] for a in second["attachments"]] == ["0.png", "1.png"]
    third = _edit(client, original, {"content": "more"}, **{"files[0]": PNG_1X1})
    assert [a["filename"] for a in third["attachments"]] == ["0.png", "1.png", "0.png"]
    gone = client.patch(original, json={"attachments": []})
    assert gone.status_code == 200 and gone.json()["attachments"] == []
    assert _new_failures(standin, before) == []
    # a bad payload_json is refused here too, and so is multipart where the spec has none
    bad = client.patch(
        original,
        files={"payload_json": (None, json.dumps({"content": 7}), "application/json")},
    )
    assert bad.status_code == 400
    json_only = client.patch(
        f"/channels/{channel}",
        files={"payload_json": (None, json.dumps({"name": "renamed"}), "application/json")},
    )
    assert json_only.status_code == 400
    found = _new_failures(standin, before)
    assert len(found) == 2, found
    assert "content: 7 is not of type" in found[0]
    assert found[1].endswith("a multipart body: PATCH /channels/{channel_id} takes JSON only")


def test_a_select_sends_the_values_chosen_as_a_component_interaction(
    standin: StandIn, client: httpx.Client
) -> None:
    """The driver's select on an ephemeral answer: type 3, component_type 3, the values; a
    value the select does not offer is the test's error, not a request."""
    d = Driver(standin)
    channel = d.channel("general")
    user = d.user("otto")
    standin.call(
        lambda: standin.commands.append({"id": "5", "name": "pick", "type": 1, "options": []})
    )
    iid = d.slash(user, channel, "pick")
    token = d.interaction(iid).token
    menu = {
        "type": 3,
        "custom_id": "size",
        "options": [{"label": size, "value": size} for size in ("S", "M", "L", "XL")],
    }
    answered = client.post(
        f"/interactions/{iid}/{token}/callback",
        json={
            "type": 4,
            "data": {
                "content": "pick",
                "flags": 64,
                "components": [{"type": 1, "components": [menu]}],
            },
        },
    )
    assert answered.status_code == 200, answered.text
    [ballot] = d.answers(iid)
    with pytest.raises(AssertionError, match="not \\['XXL'\\]"):
        d.select(user, ballot, ["XXL"])
    with pytest.raises(AssertionError, match="takes 1 to 1 values"):
        d.select(user, ballot, ["S", "M"])
    chosen = d.interaction(d.select(user, ballot, ["L"]))
    assert (chosen.type, chosen.message_id) == (3, int(ballot["id"]))
    assert chosen.data == {"custom_id": "size", "component_type": 3, "values": ["L"]}


def test_two_sessions_of_the_bot_both_get_the_interaction_and_the_second_answer_is_raced(
    standin: StandIn, client: httpx.Client
) -> None:
    """Several processes of the bot on one shard (the test's opt-in): the second answer is
    refused as Discord refuses it (40060) and kept as the race one process lost, not as a
    failure."""
    d = Driver(standin)
    channel = d.channel("general")
    user = d.user("avi")
    standin.call(
        lambda: standin.commands.append({"id": "3", "name": "race", "type": 1, "options": []})
    )
    standin.twin_sessions = True
    try:
        iid = d.slash(user, channel, "race")
        token = d.interaction(iid).token
        before = len(standin.failures)
        first = client.post(f"/interactions/{iid}/{token}/callback", json={"type": 5, "data": {}})
        second = client.post(f"/interactions/{iid}/{token}/callback", json={"type": 5, "data": {}})
    finally:
        standin.twin_sessions = False
    assert (first.status_code, second.status_code) == (200, 400)
    assert second.json()["code"] == 40060
    assert _new_failures(standin, before) == []
    assert d.callbacks(iid) == [200, 400]
    raced = standin.call(lambda: [str(f) for f in standin.raced])
    assert len(raced) == 1 and raced[0].startswith("[raced]"), raced


def test_a_held_path_waits_at_its_gate_until_released(
    standin: StandIn, client: httpx.Client
) -> None:
    d = Driver(standin)
    channel = d.channel("gated")
    d.hold_posts(channel)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        posted = pool.submit(client.post, f"/channels/{channel}/messages", json={"content": "held"})
        d.wait_for(lambda: d.posts_waiting(channel) == 1, "the post at the gate")
        assert d.messages(channel) == []
        d.release_posts(channel)
        assert posted.result(60).status_code == 200
    assert [m["content"] for m in d.messages(channel)] == ["held"]
    assert d.posts_waiting(channel) == 0


def test_an_interaction_answered_after_3_s_is_unknown(
    standin: StandIn, client: httpx.Client
) -> None:
    d = Driver(standin)
    channel = d.channel("general")
    user = d.user("carl")
    standin.call(
        lambda: standin.commands.append({"id": "2", "name": "late", "type": 1, "options": []})
    )
    iid = d.slash(user, channel, "late")
    interaction = d.interaction(iid)
    interaction.created -= 3.5  # as if 3.5 s went by
    before = len(standin.failures)
    answer = client.post(
        f"/interactions/{iid}/{interaction.token}/callback",
        json={"type": 4, "data": {"content": "late"}},
    )
    assert answer.status_code == 404
    assert answer.json()["code"] == 10062
    [found] = _new_failures(standin, before)
    assert "after 3.5" in found


def test_spec_copy_is_the_shared_spec() -> None:
    """The repository's copy of the spec is Discord's published one, byte for byte, wherever
    ``../shared`` is there to compare with."""
    shared = shared_spec_path()
    if shared is None:
        pytest.skip("../shared/discord-api-spec is not beside this checkout")
    assert SPEC_PATH.read_bytes() == shared.read_bytes()
