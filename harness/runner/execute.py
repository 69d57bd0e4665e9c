"""Execution: planned variants x items x repeats -> calls (or cache hits) -> scored records on disk.

Each record is appended to records.jsonl and flushed as soon as it exists, so a crash loses nothing that was
answered. Execution knows nothing about reports; the caller builds them from the records afterwards.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from harness.config import RunConfig
from harness.models import pricing
from harness.models.cache import ResponseCache, cache_key
from harness.models.client import ModelRefused
from harness.records import CallError, Completion, EvalItem, Record, Retrieval, ToolCall, Usage
from harness.runner.sequential import Monitor
from harness.runner.variant_plan import VariantPlan
from harness.scoring.scorers import answer_issue
from harness.scoring.suite import TaskScoring

MIN_RECORDS_FOR_ERROR_RATE = 20

Job = tuple[VariantPlan, EvalItem, int]


def _reported(result: Completion) -> dict[str, Any]:
    """What a cached answer keeps besides its text: the tool calls, and the cost and retrieved doc ids an
    application reported (left out when absent, so a model's cache entries stay as they were)."""
    out: dict[str, Any] = {}
    if result.tool_calls:
        out["tool_calls"] = [c.model_dump() for c in result.tool_calls]
    if result.cost_usd is not None:
        out["cost_usd"] = result.cost_usd
    if result.retrieved_doc_ids is not None:
        out["retrieved_doc_ids"] = result.retrieved_doc_ids
    return out


@dataclass
class Progress:
    """Counts of this session's records; `stop` is set when the error-rate guard fires."""

    done: int = 0
    errors: int = 0
    stop: str | None = None
    wait_s: dict[str, float] = field(default_factory=dict)  # client-side wait per model (config name)


def cache_entry(result: Completion) -> dict[str, Any]:
    """What the response cache keeps of an answer: enough to score it again as it was (its calls included)."""
    entry = {"text": result.text, "usage": result.usage.model_dump() if result.usage is not None else None,
             "latency_s": result.latency_s, "finish_reason": result.finish_reason, "refusal": result.refusal}
    return {**entry, **_reported(result)}


class Executor:
    def __init__(self, cfg: RunConfig, scoring: TaskScoring, cache: ResponseCache | None, *, refresh: bool = False,
                 progress: bool = True, max_error_rate: float | None = None, judge: Any = None):
        self.cfg = cfg
        self.scoring = scoring
        self.judge = judge  # harness.scoring.judge.JudgeRuntime, or None: judge scores are then unknown
        self.cache = cache
        self.refresh = refresh
        self.progress = progress
        self.max_error_rate = max_error_rate
        self.state = Progress()
        # run.stop_when: watches the compared variants' records and says when to stop (harness.runner.sequential)
        self.monitor: Monitor | None = None

    # -- one record --------------------------------------------------------------------------------------
    def request_for(self, plan: VariantPlan, item: EvalItem, repeat: int = 0) -> dict[str, Any]:
        """Each repeat gets its own seed (run.seed + repeat), so repeats at temperature > 0 are real repeats."""
        v, run = plan.variant, self.cfg.run
        return plan.client.build_request(
            plan.prepared[item.id].messages,
            temperature=v.temperature if v.temperature is not None else run.temperature,
            max_tokens=v.max_tokens or run.max_tokens,
            seed=run.seed + repeat if run.seed is not None else None, stop=plan.stop, item=item,
        )

    @staticmethod
    def key_for(plan: VariantPlan, request: dict[str, Any], repeat: int) -> str:
        """The cache key: who answers and the body actually sent (extra_body merged, credentials left out)."""
        return cache_key(plan.endpoint_id, plan.client.keyed_body(request), repeat)

    def make_record(self, plan: VariantPlan, item: EvalItem, repeat: int, request: dict[str, Any],
                    result: Completion | CallError, started: float) -> Record:
        """The scored record of one call, with what its retrieval cost (a query embedding through rag.embedding,
        paid per request in production too) added to its cost."""
        rec = self.answer_record(plan, item, repeat, request, result, started)
        extra = plan.prepared[item.id].retrieval_cost
        if extra is not None:
            rec.retrieval_cost = extra
            if rec.cost_usd is not None:
                rec.cost_usd = None if extra.get("cost_usd") is None else rec.cost_usd + extra["cost_usd"]
        return rec

    def answer_record(self, plan: VariantPlan, item: EvalItem, repeat: int, request: dict[str, Any],
                      result: Completion | CallError, started: float) -> Record:
        v = plan.variant
        prep = plan.prepared[item.id]
        rec = Record(item_id=item.id, variant=v.name, model=v.model, model_id=plan.client.model_id, repeat=repeat,
                     request=request, expected=item.expected, retrieved_doc_ids=prep.retrieved_doc_ids,
                     shot_ids=prep.shot_ids, started_at=started)
        rec.wait_s = result.wait_s
        if isinstance(result, CallError):
            rec.error, rec.error_kind, rec.attempts = result.message, result.kind, result.attempts
            rec.latency_s = result.latency_s
        else:
            rec.raw_text, rec.usage, rec.latency_s = result.text, result.usage, result.latency_s
            rec.finish_reason, rec.attempts, rec.cache_hit = result.finish_reason, result.attempts, result.cache_hit
            rec.tool_calls = result.tool_calls
            if result.retrieved_doc_ids is not None:  # what an application under test says it retrieved
                rec.retrieved_doc_ids = result.retrieved_doc_ids
            # Every answered call was billed; without usage its cost is unknown, never $0. A self-hosted call has
            # no per-token price: None here (harness.analysis.costs prices it from the measured busy time). An
            # application's own report of its cost wins over any price of the config.
            rec.cost_usd = (result.cost_usd if result.cost_usd is not None else
                            pricing.cost_usd(result.usage, plan.price) if plan.price
                            and plan.price.basis != "self-hosted" else None)
            issue = answer_issue(result.text, result.finish_reason, refusal=getattr(result, "refusal", None),
                                 max_tokens=request.get("max_tokens") or request.get("max_completion_tokens"),
                                 tool_calls=result.tool_calls)
            if issue is not None and result.finish_reason == "length" and "max_completion_tokens" in request:
                issue += " (a reasoning model: its hidden reasoning tokens share that budget; or lower reasoning_effort)"
            self.scoring.score_answer(rec, item, result.text, issue, tool_calls=result.tool_calls)
        if rec.retrieved_doc_ids is not None and item.expected_doc_ids:
            from harness.retrieval.metrics import recall_at_k, reciprocal_rank

            rec.retrieval = Retrieval(recall_at_k(item.expected_doc_ids, rec.retrieved_doc_ids, v.top_k),
                                      reciprocal_rank(item.expected_doc_ids, rec.retrieved_doc_ids))
        return rec

    def cached_record(self, plan: VariantPlan, item: EvalItem, repeat: int, request: dict[str, Any],
                      hit: dict[str, Any]) -> Record:
        usage = Usage(**hit["usage"]) if hit.get("usage") is not None else None
        calls = [ToolCall(**c) for c in hit["tool_calls"]] if hit.get("tool_calls") else None
        comp = Completion(text=hit["text"], usage=usage, latency_s=hit["latency_s"],
                          finish_reason=hit.get("finish_reason"), attempts=0, cache_hit=True,
                          refusal=hit.get("refusal"), cost_usd=hit.get("cost_usd"),
                          retrieved_doc_ids=hit.get("retrieved_doc_ids"), tool_calls=calls)
        return self.make_record(plan, item, repeat, request, comp, time.time())

    def prefetch_cached(self, jobs: list[Job]) -> tuple[list[Record], list[Job]]:
        """Answer every job the cache already holds, in bulk and without the async machinery, so a
        re-run costs little more than reading the cache; returns (records, jobs still to call)."""
        keyed = []
        for plan, item, r in jobs:
            request = self.request_for(plan, item, r)
            keyed.append((plan, item, r, request, self.key_for(plan, request, r)))
        hits = self.cache.get_many([k[4] for k in keyed])
        if hits:  # batch what batches (embeddings for a similarity scorer) before scoring one by one
            self.scoring.warm([h.get("text") or "" for h in hits.values()], list({i.id: i for _, i, *_ in keyed}.values()))
        records, rest = [], []
        for plan, item, r, request, key in keyed:
            hit = hits.get(key)
            if hit is not None:
                records.append(self.cached_record(plan, item, r, request, hit))
            else:
                rest.append((plan, item, r))
        return records, rest

    async def call(self, plan: VariantPlan, item: EvalItem, repeat: int) -> Record:
        prep = plan.prepared[item.id]
        if prep.error is not None:  # its prompt could not be prepared (the query embedding failed): no call
            rec = self.make_record(plan, item, repeat, {}, CallError(prep.error_kind or "retrieval", prep.error),
                                   time.time())
            await self.scoring.finish(rec, item, self.judge)
            return rec
        request = self.request_for(plan, item, repeat)
        started = time.time()
        key = None
        if self.cache is not None:
            key = self.key_for(plan, request, repeat)
            if not self.refresh:
                hit = await self.cache.aget(key)
                if hit is not None:
                    rec = self.cached_record(plan, item, repeat, request, hit)
                    await self.scoring.finish(rec, item, self.judge)
                    return rec
        try:
            result = await plan.client.complete(request)
        except ModelRefused as exc:  # permanent: the run stops here, naming where
            where = f"variant {plan.variant.name}"
            raise exc.with_context(f"{where}, item {item.id}" if exc.about_the_request else where) from None
        if key is not None and isinstance(result, Completion):
            self.cache.put(key, cache_entry(result))
        rec = self.make_record(plan, item, repeat, request, result, started)
        await self.scoring.finish(rec, item, self.judge)
        return rec

    async def finish_all(self, records: list[Record], items: dict[str, EvalItem]) -> None:
        """The model-graded scores (judge) of many records at once, as concurrent as the run allows."""
        todo = [r for r in records if self.scoring.needs_finish(r)]
        if not todo:
            return
        sem = asyncio.Semaphore(self.cfg.run.concurrency)

        async def one(rec: Record) -> None:
            async with sem:
                await self.scoring.finish(rec, items[rec.item_id], self.judge)

        await asyncio.gather(*(one(r) for r in todo))

    # -- the loop ----------------------------------------------------------------------------------------
    def _count(self, rec: Record) -> None:
        st = self.state
        st.done += 1
        if rec.error is not None:
            st.errors += 1
        if rec.wait_s is not None:
            st.wait_s[rec.model] = st.wait_s.get(rec.model, 0.0) + rec.wait_s
        rate = self.max_error_rate
        if (rate is not None and st.stop is None and st.done >= MIN_RECORDS_FOR_ERROR_RATE
                and st.errors / st.done > rate):
            st.stop = (f"stopped early: error rate {st.errors / st.done:.0%} "
                       f"exceeded --max-error-rate {rate:.0%} after {st.done} calls")

    async def execute(self, plans: list[VariantPlan], items: list[EvalItem], done: set[tuple[str, str, int]],
                      records_path: Path) -> dict[str, Any]:
        """Every job not yet in `done`, appended to records_path; returns the manifest's `calls` entry."""
        jobs, streams = self.plan_jobs(plans, items, done)
        t_start = time.perf_counter()
        for stream in streams:  # retrieval variants' prompts, batch by batch, while the others are called
            stream.start()
        bar = tqdm(total=len(jobs), unit="call", desc="running", disable=not self.progress, mininterval=0.25,
                   dynamic_ncols=True, file=sys.stderr)
        try:
            with records_path.open("a", encoding="utf-8") as out:
                ready = [j for j in jobs if j[0].stream is None]
                # a sequential run asks item by item, in its order: no bulk answers from the cache ahead of it
                if self.cache is not None and not self.refresh and ready and self.monitor is None:
                    cached, rest = self.prefetch_cached(ready)
                    await self.finish_all(cached, {item.id: item for item in items})
                    if cached:
                        jobs = rest + [j for j in jobs if j[0].stream is not None]
                        out.write("".join(rec.model_dump_json() + "\n" for rec in cached))
                        out.flush()
                        for rec in cached:
                            self._count(rec)
                        bar.update(len(cached))
                try:
                    await self._call_all(jobs, out, bar)
                finally:
                    bar.close()
        finally:
            for stream in streams:
                stream.stop()
        calls = {"this_session": self.state.done, "errors_this_session": self.state.errors,
                 "seconds": round(time.perf_counter() - t_start, 3),
                 # summed over the calls (concurrent waits overlap): time that is not the model's latency
                 "client_wait_s": {m: round(w, 3) for m, w in sorted(self.state.wait_s.items())}}
        if streams:
            calls["prompt_stream_s"] = round(sum(s.seconds for s in streams), 3)
        return calls

    def plan_jobs(self, plans: list[VariantPlan], items: list[EvalItem],
                  done: set[tuple[str, str, int]]) -> tuple[list[Job], list[Any]]:
        """The jobs not yet done, in calling order: the variants whose prompts are ready first, then those of the
        prompt stream batch by batch (the order it prepares them in); and the streams to start."""
        repeats = range(self.cfg.run.repeats)
        streams = list({id(p.stream): p.stream for p in plans if p.stream is not None}.values())
        if self.monitor is not None:  # item by item, in the items' (seeded) order, every variant of one item
            for stream in streams:  # its batches follow the same order, so the first items' prompts come first
                mine = [p for p in plans if p.stream is stream]
                stream.order(items, {item.id for p in mine for item in items for r in repeats
                                     if (p.variant.name, item.id, r) not in done})
            ordered = [(plan, item, r) for item in items for r in repeats for plan in plans
                       if (plan.variant.name, item.id, r) not in done]
            return ordered, streams
        jobs: list[Job] = [(plan, item, r) for r in repeats for plan in plans if plan.stream is None
                           for item in items if (plan.variant.name, item.id, r) not in done]
        for stream in streams:
            mine = [p for p in plans if p.stream is stream]
            needed = {item.id for p in mine for item in items for r in repeats
                      if (p.variant.name, item.id, r) not in done}
            for batch in stream.order(items, needed):
                jobs.extend((plan, item, r) for r in repeats for plan in mine for item in batch
                            if (plan.variant.name, item.id, r) not in done)
        return jobs, streams

    async def _call_all(self, jobs: list[Job], out: IO[str], bar: tqdm) -> None:
        it = iter(jobs)

        async def worker() -> None:
            for plan, item, r in it:
                if self.state.stop:
                    return
                if self.monitor is not None:
                    if not self.monitor.wants(item.id):
                        continue  # settled: items not yet started are not asked (and are not errors)
                    self.monitor.started.add(item.id)
                if plan.stream is not None:
                    await plan.stream.ready(item.id)
                rec = await self.call(plan, item, r)
                out.write(rec.model_dump_json() + "\n")
                out.flush()  # in the OS's hands now: a SIGKILL loses nothing already answered
                self._count(rec)
                if self.monitor is not None:
                    self.monitor.observe(rec)
                if rec.error is not None:
                    bar.set_postfix(errors=self.state.errors, refresh=False)
                bar.update(1)

        workers = [asyncio.create_task(worker()) for _ in range(min(self.cfg.run.concurrency, len(jobs)) or 1)]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
