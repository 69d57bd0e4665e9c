"""Prompts that need each item's embedding (few-shot by similarity, RAG), prepared batch after batch on a worker
thread while the calls already prepared are in flight.

Plan.build settles what is fixed (the index, the few-shot pool and its vectors) and hands each such variant a
batch preparer; the executor starts the stream with the items it still has to ask and awaits `ready(item)`
before calling one of them. Each batch's query texts are embedded once, through the vector cache by text, for
every variant that needs them. Batches start small so the first retrieval calls go out early, then grow so the
embedding model runs at its batch size.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from harness.data.evalset import EvalSet
from harness.errors import HarnessError
from harness.prompts.variants import query_texts
from harness.records import EvalItem

if TYPE_CHECKING:
    from harness.runner.variant_plan import VariantPlan

BATCH_SIZES = (16, 48, 128)  # the first batches, then the last size repeated


def batches(items: list[EvalItem], sizes: Sequence[int] = BATCH_SIZES) -> list[list[EvalItem]]:
    out, start, k = [], 0, 0
    while start < len(items):
        size = sizes[min(k, len(sizes) - 1)]
        out.append(items[start:start + size])
        start += size
        k += 1
    return out


class PromptStream:
    def __init__(self, evalset: EvalSet, plans: list[VariantPlan], embed_fn: Callable[[Sequence[str]], np.ndarray]):
        self.evalset = evalset
        self.plans = plans
        self.embed_fn = embed_fn
        self.batches: list[list[EvalItem]] = []
        self._events: list[asyncio.Event] = []
        self._batch_of: dict[str, int] = {}
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.seconds = 0.0  # time the worker spent preparing

    def order(self, items: list[EvalItem], needed: set[str] | None = None) -> list[list[EvalItem]]:
        """Split the items still to ask (every item, or those in `needed`) into the stream's batches."""
        todo = [i for i in items if needed is None or i.id in needed]
        self.batches = batches(todo)
        self._batch_of = {item.id: k for k, batch in enumerate(self.batches) for item in batch}
        return self.batches

    def start(self) -> None:
        """Begin on the running event loop; call order() first."""
        self._loop = asyncio.get_running_loop()
        self._events = [asyncio.Event() for _ in self.batches]
        if not self.batches:
            return
        self._thread = threading.Thread(target=self._work, name="prompt-stream", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        import time

        assert self._loop is not None
        t0 = time.perf_counter()
        done = 0
        try:
            for k, batch in enumerate(self.batches):
                if self._stop.is_set():
                    return
                shared = any(not getattr(p, "own_vectors", False) for p in self.plans)
                vecs = self.embed_fn(query_texts(self.evalset, batch)) if shared else None
                for plan in self.plans:
                    assert plan.preparer is not None
                    plan.prepared.update(plan.preparer(batch, vecs))
                done = k + 1
                self.seconds = time.perf_counter() - t0
                self._loop.call_soon_threadsafe(self._events[k].set)
        except BaseException as exc:  # noqa: BLE001 - handed to the calls that wait on it
            self._error = exc
            for ev in self._events[done:]:
                self._loop.call_soon_threadsafe(ev.set)

    async def ready(self, item_id: str) -> None:
        """Return once the item's prompts exist for every variant of this stream."""
        k = self._batch_of.get(item_id)
        if k is None:
            raise KeyError(f"item {item_id} is not in the prompt stream")
        ev = self._events[k]
        if not ev.is_set():
            await ev.wait()
        if self._error is not None and not self.has(item_id):
            if isinstance(self._error, HarnessError):  # one line for the user (a refused embeddings endpoint)
                raise self._error
            raise RuntimeError(f"preparing prompts failed: {type(self._error).__name__}: {self._error}") \
                from self._error

    def has(self, item_id: str) -> bool:
        return all(item_id in p.prepared for p in self.plans)

    async def wait_all(self) -> None:
        for k, ev in enumerate(self._events):
            if not ev.is_set():
                await ev.wait()
            if self._error is not None and not all(self.has(i.id) for i in self.batches[k]):
                raise RuntimeError(f"preparing prompts failed: {type(self._error).__name__}: {self._error}") \
                    from self._error

    def stop(self) -> None:
        self._stop.set()
