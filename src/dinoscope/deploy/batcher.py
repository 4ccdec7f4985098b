"""An async micro-batcher: requests arriving close together share one forward pass.

The first request to find the model idle waits up to `wait_ms` for company (less once `max_batch` requests wait);
then batches of up to `max_batch` run one after another in a worker thread, each taking every request that arrived
while the previous one ran. The event loop stays free and the model never runs twice at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class MicroBatcher:
    """Collects items for up to `wait_ms` (or `max_batch` items) and runs `fn(items) -> results` on them at once."""

    def __init__(self, fn: Callable[[list[Any]], Sequence[Any]], *, max_batch: int = 32, wait_ms: float = 5.0):
        self.fn = fn
        self.max_batch = max_batch
        self.wait = wait_ms / 1000.0
        self.batch_sizes: Counter[int] = Counter()  # batch size -> how many batches ran with it
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._full: asyncio.Event | None = None
        self._drainer: asyncio.Task | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="dinoscope-batch")

    async def submit(self, item: Any) -> Any:
        """The result of `fn` for this one item, computed in a batch with whatever else arrived meanwhile."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._full = asyncio.Event()
            self._drainer = loop.create_task(self._drain())
        if len(self._pending) >= self.max_batch:
            self._full.set()
        return await future

    async def _drain(self) -> None:
        """Wait briefly for a batch to gather, then run batches until nobody is waiting."""
        try:
            await asyncio.wait_for(self._full.wait(), self.wait)
        except asyncio.TimeoutError:  # (not the builtin TimeoutError before Python 3.11)
            pass
        while self._pending:
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            await self._run(batch)

    async def _run(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        """Run one batch and resolve each waiting request with its own result (or the batch's error)."""
        self.batch_sizes[len(batch)] += 1
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._worker, self.fn, [i for i, _ in batch])
        except Exception as exc:  # every request of the batch gets the error; the service keeps running
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
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
