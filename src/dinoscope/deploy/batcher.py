"""An async micro-batcher: requests arriving close together share one forward pass.

The first request to find the model idle waits up to `wait_ms` for company (less once `max_batch` requests, or
`max_cost` worth of them, wait); then batches of up to `max_batch` items and `max_cost` in all run one after another
in a worker thread, each taking what arrived while the previous one ran. The event loop stays free and the model
never runs twice at once.

`PixelBudget` bounds what waits: a request holds its share of it from before its image is decoded until its
forward pass is done, so the memory of decoded images in flight stays bounded however many requests arrive.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any


class MicroBatcher:
    """Collects items for up to `wait_ms` (or `max_batch` items) and runs `fn(items) -> results` on them at once.

    Each item has a cost (the service: its pixels); a batch holds at most `max_cost` in all, but always one item,
    so a forward pass never needs the memory of more than `max_cost` pixels (or one image).
    """

    def __init__(self, fn: Callable[[list[Any]], Sequence[Any]], *, max_batch: int = 32, wait_ms: float = 5.0,
                 max_cost: float | None = None):
        self.fn = fn
        self.max_batch = max_batch
        self.max_cost = max_cost
        self.wait = wait_ms / 1000.0
        self.batch_sizes: Counter[int] = Counter()  # batch size -> how many batches ran with it
        self._pending: list[tuple[Any, asyncio.Future, float]] = []
        self._full: asyncio.Event | None = None
        self._drainer: asyncio.Task | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="dinoscope-batch")

    async def submit(self, item: Any, cost: float = 1.0) -> Any:
        """The result of `fn` for this one item, computed in a batch with whatever else arrived meanwhile."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((item, future, cost))
        if self._drainer is None or self._drainer.done():
            self._full = asyncio.Event()
            self._drainer = loop.create_task(self._drain())
        if len(self._pending) >= self.max_batch or (
                self.max_cost is not None and sum(c for _, _, c in self._pending) >= self.max_cost):
            self._full.set()
        return await future

    def _next_batch(self) -> list[tuple[Any, asyncio.Future, float]]:
        """The longest run of pending items from the front within `max_batch` and `max_cost` (at least one)."""
        n, total = 0, 0.0
        for _, _, cost in self._pending[:self.max_batch]:
            if n and self.max_cost is not None and total + cost > self.max_cost:
                break
            n, total = n + 1, total + cost
        batch, self._pending = self._pending[:n], self._pending[n:]
        return batch

    async def _drain(self) -> None:
        """Wait briefly for a batch to gather, then run batches until nobody is waiting."""
        try:
            await asyncio.wait_for(self._full.wait(), self.wait)
        except asyncio.TimeoutError:  # (not the builtin TimeoutError before Python 3.11)
            pass
        while self._pending:
            await self._run(self._next_batch())

    async def _run(self, batch: list[tuple[Any, asyncio.Future, float]]) -> None:
        """Run one batch and resolve each waiting request with its own result (or the batch's error)."""
        self.batch_sizes[len(batch)] += 1
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._worker, self.fn,
                                                                       [i for i, _, _ in batch])
        except Exception as exc:  # every request of the batch gets the error; the service keeps running
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future, _), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def stats(self) -> dict[str, float]:
        """How many batches ran, how many items they held, and the mean batch size."""
        batches = sum(self.batch_sizes.values())
        items = sum(size * n for size, n in self.batch_sizes.items())
        return {"batches": batches, "items": items, "mean_batch_size": items / batches if batches else 0.0}

    def close(self) -> None:
        """Stop the worker thread once the running batch is done."""
        self._worker.shutdown(wait=True)


class PixelBudget:
    """An async, first-come-first-served counting limit: `async with budget.hold(n)` waits until `n` more fit
    under `limit` (a share over the limit counts as the whole limit, so it runs alone rather than never)."""

    def __init__(self, limit: float):
        self.limit = limit
        self.used = 0.0
        self._waiting: deque[tuple[float, asyncio.Future]] = deque()

    @asynccontextmanager
    async def hold(self, n: float) -> AsyncIterator[None]:
        n = min(n, self.limit)
        if self._waiting or self.used + n > self.limit:  # queue behind earlier waiters: a big share is not starved
            future = asyncio.get_running_loop().create_future()
            self._waiting.append((n, future))
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():  # granted just as it was cancelled: give it back
                    self._release(n)
                else:
                    if (n, future) in self._waiting:
                        self._waiting.remove((n, future))
                    self._grant()
                raise
        else:
            self.used += n
        try:
            yield
        finally:
            self._release(n)

    def _release(self, n: float) -> None:
        self.used -= n
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self.used + self._waiting[0][0] <= self.limit:
            n, future = self._waiting.popleft()
            if not future.done():
                self.used += n
                future.set_result(None)
