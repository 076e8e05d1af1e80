"""Merge order: dependencies first, otherwise the order tasks joined the release."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Protocol, TypeVar


class Orderable(Protocol):
    @property
    def slug(self) -> str: ...
    @property
    def dependency_slugs(self) -> list[str]: ...


T = TypeVar("T", bound=Orderable)


def merge_order(members: Sequence[T]) -> list[T]:
    """Topological order over the dependencies *between members* (Kahn's algorithm), stable
    on the given order. Dependencies outside the release are already shipped and ignored.

    A cycle cannot enter a release (each task needs its dependencies shipped or aboard first),
    but if one is found the remaining members are appended in their given order rather than
    lost."""
    index = {m.slug: i for i, m in enumerate(members)}
    waiting_on = {m.slug: {d for d in m.dependency_slugs if d in index} for m in members}
    dependents: dict[str, list[str]] = {m.slug: [] for m in members}
    for slug, deps in waiting_on.items():
        for dep in deps:
            dependents[dep].append(slug)
    ready = [index[slug] for slug, deps in waiting_on.items() if not deps]
    heapq.heapify(ready)
    ordered: list[T] = []
    while ready:
        member = members[heapq.heappop(ready)]
        ordered.append(member)
        for dependent in dependents[member.slug]:
            waiting_on[dependent].discard(member.slug)
            if not waiting_on[dependent]:
                heapq.heappush(ready, index[dependent])
    if len(ordered) < len(members):
        placed = {m.slug for m in ordered}
        ordered.extend(m for m in members if m.slug not in placed)
    return ordered
