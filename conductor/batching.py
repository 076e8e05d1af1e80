"""Group commit: many callers, one writer.

Each caller ``submit``s one item and waits for its own result; one drainer hands whatever has
queued up to ``apply`` as one batch (one write transaction), in arrival order. A lone item is
a batch of one, so a quiet guild pays nothing; a busy one pays one commit per batch instead of
one per item. ``apply`` returns one result or exception per item, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: the most items applied in one transaction
MAX_BATCH = 200
#: items applied between two turns of the event loop inside a batch: each item's moves run
#: without awaiting the database (the machine's callbacks, the rows queued for the flush), so
#: a batch of 200 would hold the loop for about 100 ms
TURN_EVERY = 10


async def turns(items: Iterable[T]) -> AsyncIterator[T]:
    """``items`` one by one, the event loop given a turn every :data:`TURN_EVERY` of them."""
    for i, item in enumerate(items):
        if i and i % TURN_EVERY == 0:
            await asyncio.sleep(0)
        yield item


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        apply: Callable[[Sequence[T]], Awaitable[list[R | Exception]]],
        *,
        max_batch: int = MAX_BATCH,
        name: str = "group-commit",
    ) -> None:
        self._apply = apply
        self._max_batch = max_batch
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name=self._name)
        # Shielded: a caller that gives up does not cancel the write others wait on.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = (
                self._pending[: self._max_batch],
                self._pending[self._max_batch :],
            )
            results: list[R | Exception]
            try:
                results = await self._apply([item for item, _ in batch])
            except Exception as error:  # apply() degrades per item itself; belt and braces
                results = [error] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def drain(self) -> None:
        """Wait until everything submitted so far is applied (for shutdown)."""
        while self._drainer is not None and not self._drainer.done():
            await asyncio.shield(self._drainer)
