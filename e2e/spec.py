"""The request bodies the bot sends, checked against Discord's OpenAPI 3.1 description
(``../shared/discord-api-spec/openapi.json``, kept in ``e2e/discord-api-spec/`` as an exact
copy so a bare CI machine checks the same; JSON Schema 2020-12 through ``jsonschema`` and a
``referencing`` registry for its ``#/components/...``).

Known looseness of the spec (``../shared/README.md``): discord.py sends some snowflakes as JSON
integers where the spec's ``SnowflakeType`` is a string pattern, so both are accepted. Limits
spanning fields (the 6,000-character embed total, the 2,000-character message) are the
stand-in's own checks, not the spec's.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: the copy kept in the repository (MIT, its LICENSE beside it), so a clone on a machine
#: without ``../shared`` checks the same bodies; ``test_spec_copy_is_the_shared_spec`` holds it
#: byte for byte to ``../shared/discord-api-spec/openapi.json`` wherever that exists
SPEC_PATH = Path(__file__).resolve().parent / "discord-api-spec" / "openapi.json"
#: where the spec sits in the registry; its own ``#/components/...`` resolve against it
SPEC_URI = "urn:discord-openapi"
_MULTIPART_FILE = re.compile(r"^files\[(\d+)\]$")


def shared_spec_path() -> Path | None:
    """The published spec beside the project (``../shared``), or beside the main checkout
    when this is a worktree of it; None where neither exists (a bare CI machine)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "discord-api-spec" / "openapi.json"
        if candidate.is_file():
            return candidate
    return None


def spec_path() -> Path:
    """The spec the stand-in checks against: the repository's copy."""
    return SPEC_PATH


@dataclass(frozen=True, slots=True)
class Operation:
    """One path template and method of the spec."""

    template: str
    method: str
    #: the schema of a JSON body (None: the operation takes no body)
    json_schema: dict[str, Any] | None
    #: whether a multipart body is described
    multipart: bool


class ApiSpec:
    """Discord's HTTP API as the spec describes it: which operation a request is, and whether
    its body is one the operation takes."""

    def __init__(self, document: dict[str, Any]) -> None:
        document = copy.deepcopy(document)
        snowflake = document["components"]["schemas"]["SnowflakeType"]
        # discord.py writes some ids as integers (message_reference, allowed_mentions.users)
        document["components"]["schemas"]["SnowflakeType"] = {
            "anyOf": [snowflake, {"type": "integer", "minimum": 0}]
        }
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._routes: list[tuple[list[str | None], str]] = []
        for template in document["paths"]:
            segments = [None if s.startswith("{") else s for s in template.strip("/").split("/")]
            self._routes.append((segments, template))
        # literal segments win over parameters: /users/@me before /users/{user_id}
        self._routes.sort(key=lambda route: sum(s is None for s in route[0]))

    def match(self, method: str, path: str) -> Operation | None:
        """The operation for ``method`` on ``path`` (``/channels/1/messages``), or None when
        the spec knows no such route."""
        parts = path.strip("/").split("/")
        for segments, template in self._routes:
            if len(segments) != len(parts):
                continue
            if all(s is None or s == p for s, p in zip(segments, parts, strict=True)):
                operation = self.document["paths"][template].get(method.lower())
                if operation is None:
                    continue
                return self._operation(template, method.lower(), operation)
        return None

    def _operation(self, template: str, method: str, operation: dict[str, Any]) -> Operation:
        body = operation.get("requestBody")
        if body is not None and "$ref" in body:
            body = self._resolve(body["$ref"])
        content = (body or {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        return Operation(template, method, schema, "multipart/form-data" in content)

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.document
        for key in ref.removeprefix("#/").split("/"):
            node = node[key.replace("~1", "/").replace("~0", "~")]
        return dict(node)

    def problems(self, operation: Operation, body: Any) -> list[str]:
        """What is wrong with ``body`` (a parsed JSON body, or a multipart ``payload_json``)
        for ``operation``: empty when it matches."""
        if operation.json_schema is None:
            return [f"{operation.method.upper()} {operation.template} takes no body"]
        validator = jsonschema.Draft202012Validator(
            _wrapped(operation.json_schema), registry=self.registry
        )
        found = []
        for error in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(body)"
            found.append(f"{where}: {_short(error)}")
        return found

    @staticmethod
    def file_field_problems(names: list[str]) -> list[str]:
        """A multipart body's file parts: ``files[0]`` … ``files[9]``."""
        bad = []
        for name in names:
            m = _MULTIPART_FILE.match(name)
            if m is None or int(m.group(1)) > 9:
                bad.append(f"{name}: not a file field the spec describes (files[0]..files[9])")
        return bad


def _wrapped(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (a piece of the spec) with its base set to the spec, so that its
    ``#/components/...`` resolve there."""
    return {"$id": f"{SPEC_URI}-body", "allOf": [_rebased(schema)]}


def _rebased(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                f"{SPEC_URI}{v}"
                if k == "$ref" and isinstance(v, str) and v.startswith("#")
                else _rebased(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rebased(v) for v in node]
    return node


def _short(error: jsonschema.ValidationError) -> str:
    if error.context:
        # an anyOf: the branch that went deepest says the most
        best = jsonschema.exceptions.best_match(error.context)
        return f"{error.message[:160]} (closest: {best.message[:200]})"
    return error.message[:300]


@cache
def load_spec() -> ApiSpec:
    return ApiSpec(json.loads(spec_path().read_text(encoding="utf-8")))
