"""`run: {mode: batch}`: the run's calls through the OpenAI Batch API instead of one HTTP call each.

An alternative to Executor.execute with the same inputs and the same records: every request not already
answered (in the run folder or the response cache) is written as a Batch API JSONL line

    {"custom_id": "[\\"<variant>\\",\\"<item id>\\",<repeat>]", "method": "POST", "url": "/v1/chat/completions",
     "body": <the exact body a synchronous call would post>}

into `batch/<model>-<n>.jsonl` in the run folder, one file per model, split at the API's limits (50,000
requests, 200 MB), uploaded through the files API (purpose "batch") and submitted as one batch each. The batch
ids are saved in `batches.json` in the run folder as soon as they exist, so Ctrl-C (or a crash) and
`harness run --resume RUN_DIR` re-attach to the batches already submitted instead of paying for them twice.
Polling shows a progress bar with the batches' request counts. A finished batch's output and error files are
downloaded next to its input, and each line becomes the Record a synchronous call makes, through the same
record-building and scoring code (Executor.make_record) and the same response cache. Lines that failed (a non-200
status, an error object, expired, cancelled, or missing from a failed batch) are errors with their reason.
Prices are the table's batch prices (plan.price; see pricing.batch_price).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import openai
from openai.types.chat import ChatCompletion
from tqdm import tqdm

from harness.models.client import PERMANENT_KINDS
from harness.records import CallError, Completion, EvalItem, Record
from harness.rundir.folder import write_json
from harness.runner.execute import Executor, Job, cache_entry
from harness.runner.variant_plan import VariantPlan

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
# The Batch API's limits per input file; class attributes on BatchExecutor so a test can make them small.
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1000 * 1000  # 200 MB, counted in decimal so a file is never over the API's limit
STATE_FILE = "batches.json"
FINISH_CHUNK = 1000  # records scored (judge) and written together
FOLDER = "batch"
TERMINAL = ("completed", "failed", "expired", "cancelled")


def custom_id(variant: str, item_id: str, repeat: int) -> str:
    """The line's id: variant, item and repeat as a compact JSON array (any character in an id survives)."""
    return json.dumps([variant, item_id, repeat], ensure_ascii=False, separators=(",", ":"))


def parse_custom_id(cid: str) -> tuple[str, str, int]:
    variant, item_id, repeat = json.loads(cid)
    return variant, item_id, int(repeat)


@dataclass
class BatchPart:
    """One input file and the batch made from it, as saved in batches.json."""

    model: str
    input: str  # path of the JSONL, relative to the run folder
    requests: int
    bytes: int
    input_file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    request_counts: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[str] = field(default_factory=list)
    collected: bool = False  # every line is a record in records.jsonl
    submitted_at: float | None = None
    finished_at: float | None = None


class BatchState:
    """batches.json: every part of this run folder, written atomically after each change."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.path = run_dir / STATE_FILE
        self.parts: list[BatchPart] = []
        if self.path.exists():
            data = json.loads(self.path.read_text("utf-8"))
            self.parts = [BatchPart(**p) for p in data.get("batches", [])]

    def save(self) -> None:
        write_json(self.path, {"endpoint": ENDPOINT, "batches": [vars(p) for p in self.parts]})

    def pending(self) -> list[BatchPart]:
        return [p for p in self.parts if not p.collected]

    def custom_ids(self, part: BatchPart) -> Iterator[str]:
        with (self.run_dir / part.input).open("rb") as fh:
            for raw in fh:
                if raw.strip():
                    yield json.loads(raw)["custom_id"]


def line_result(line: dict[str, Any], plan: VariantPlan) -> Completion | CallError:
    """One output or error line -> what a synchronous call would have returned."""
    err = line.get("error")
    if err:
        code = err.get("code") or "error"
        kind = {"batch_expired": "batch_expired", "batch_cancelled": "batch_cancelled"}.get(code, "batch_error")
        return CallError(kind=kind, message=f"Batch API: {code}: {err.get('message') or ''}".strip())
    resp = line.get("response") or {}
    status = resp.get("status_code")
    body = resp.get("body")
    if status != 200:
        message = ""
        if isinstance(body, dict):
            message = (body.get("error") or {}).get("message") or json.dumps(body)[:300]
        kind = ("rate_limit" if status == 429 else "server_error" if isinstance(status, int) and status >= 500
                else "client_error")
        return CallError(kind=kind, message=f"Batch API: HTTP {status}: {message}", status=status)
    try:
        completion = ChatCompletion.model_validate(body)
    except ValueError as exc:
        return CallError(kind="bad_response", message=f"Batch API: response body is not a chat completion: {exc}"[:500])
    result = plan.client._to_completion(completion, None, 1)  # type: ignore[arg-type]  # no per-call latency
    return result


class BatchExecutor(Executor):
    """Executor.execute through the Batch API; everything else (requests, cache keys, records) is inherited."""

    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Every request is paid for when the batch is submitted: there is nothing left to save by stopping.
        self.max_error_rate = None
        self.poll_s = self.cfg.run.batch_poll_s

    async def execute(self, plans: list[VariantPlan], items: list[EvalItem], done: set[tuple[str, str, int]],
                      records_path: Path) -> dict[str, Any]:
        run_dir = records_path.parent
        state = BatchState(run_dir)
        jobs, streams = self.plan_jobs(plans, items, done)
        t_start = time.perf_counter()
        for stream in streams:  # every prompt must exist before the input files are written
            stream.start()
            await stream.wait_all()
        cached_n = 0
        # Items whose prompt could not be prepared (a failed query embedding): error records, never batch lines.
        unprepared = [j for j in jobs if j[0].prepared[j[1].id].error is not None]
        jobs = [j for j in jobs if j[0].prepared[j[1].id].error is None]
        with records_path.open("a", encoding="utf-8") as out:
            for plan, item, r in unprepared:
                rec = await self.call(plan, item, r)  # returns the error record without calling
                out.write(rec.model_dump_json() + "\n")
                self._count(rec)
            if self.cache is not None and not self.refresh and jobs:
                cached, jobs = self.prefetch_cached(jobs)
                await self.finish_all(cached, {item.id: item for item in items})
                cached_n = len(cached)
                if cached:
                    out.write("".join(rec.model_dump_json() + "\n" for rec in cached))
                    out.flush()
                    for rec in cached:
                        self._count(rec)
            by_cid = {custom_id(p.variant.name, item.id, r): (p, item, r) for p, item, r in jobs}
            attached: set[str] = set()
            for part in state.pending():
                attached.update(state.custom_ids(part))
            reattached = [p.batch_id or p.input for p in state.pending()]
            if reattached:
                print(f"batch: re-attaching to {len(reattached)} batch(es) saved in {state.path}: "
                      f"{', '.join(reattached)}", file=sys.stderr)
            self.write_parts([(cid, job) for cid, job in by_cid.items() if cid not in attached], state)
            clients = {p.variant.model: p.client for p in plans}
            await self.submit(state, clients)
            await self.poll_and_collect(state, clients, by_cid, out)
        parts = state.parts
        return {"mode": "batch", "prices": "batch", "this_session": self.state.done,
                "errors_this_session": self.state.errors, "cached": cached_n,
                "seconds": round(time.perf_counter() - t_start, 3),
                "batches": [{"id": p.batch_id, "model": p.model, "requests": p.requests, "status": p.status,
                             "request_counts": p.request_counts, "input": p.input} for p in parts]}

    # -- input files ---------------------------------------------------------------------------------------
    def write_parts(self, jobs: list[tuple[str, Job]], state: BatchState) -> None:
        """The JSONL input files, one series per model, each within the API's request and size limits."""
        by_model: dict[str, list[tuple[str, Job]]] = {}
        for cid, job in jobs:
            by_model.setdefault(job[0].variant.model, []).append((cid, job))
        folder = state.run_dir / FOLDER
        folder.mkdir(exist_ok=True)
        for model, model_jobs in by_model.items():
            n = sum(1 for p in state.parts if p.model == model)
            fh: IO[bytes] | None = None
            part: BatchPart | None = None
            for cid, (plan, item, r) in model_jobs:
                body = plan.client.body_for(self.request_for(plan, item, r))
                line = (json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body},
                                   ensure_ascii=False, separators=(",", ":")) + "\n").encode()
                if part is not None and (part.requests >= self.max_requests
                                         or part.bytes + len(line) > self.max_bytes):
                    fh.close()  # type: ignore[union-attr]
                    fh = part = None
                if part is None:
                    n += 1
                    rel = f"{FOLDER}/{_safe(model)}-{n:03d}.jsonl"
                    part = BatchPart(model=model, input=rel, requests=0, bytes=0)
                    state.parts.append(part)
                    fh = (state.run_dir / rel).open("wb")
                fh.write(line)  # type: ignore[union-attr]
                part.requests += 1
                part.bytes += len(line)
            if fh is not None:
                fh.close()
        state.save()

    # -- submission ----------------------------------------------------------------------------------------
    async def submit(self, state: BatchState, clients: dict[str, Any]) -> None:
        """Upload and create every part that has no batch yet; each id is saved the moment it exists."""
        for part in state.pending():
            if part.batch_id is not None:
                continue
            client = clients.get(part.model)
            if client is None:
                continue
            with _refusals(client):
                await self._submit_part(state, part, client)

    async def _submit_part(self, state: BatchState, part: BatchPart, client: Any) -> None:
        api = client.client.with_options(max_retries=5)
        if part.input_file_id is not None:
            # An earlier process uploaded this file and may have created its batch before it was stopped.
            found = await _batch_for_file(api, part.input_file_id)
            if found is not None:
                _update(part, found)
                state.save()
                return
        else:
            path = state.run_dir / part.input
            uploaded = await api.files.create(file=(path.name, path.read_bytes(), "application/jsonl"),
                                              purpose="batch")
            part.input_file_id = uploaded.id
            state.save()
        batch = await api.batches.create(input_file_id=part.input_file_id, endpoint=ENDPOINT,
                                         completion_window=COMPLETION_WINDOW,
                                         metadata={"harness_run": state.run_dir.name, "part": part.input})
        part.submitted_at = time.time()
        _update(part, batch)
        state.save()
        print(f"batch: submitted {batch.id} ({part.requests} requests of model {part.model}); "
              f"if stopped, `harness run --resume {state.run_dir}` re-attaches to it", file=sys.stderr)

    # -- polling and results -------------------------------------------------------------------------------
    async def poll_and_collect(self, state: BatchState, clients: dict[str, Any],
                               by_cid: dict[str, Job], out: IO[str]) -> None:
        pending = [p for p in state.pending() if p.batch_id is not None and p.model in clients]
        total = sum(p.requests for p in pending)
        bar = tqdm(total=total, unit="req", desc="batch", disable=not self.progress, mininterval=0.5,
                   dynamic_ncols=True, file=sys.stderr)
        try:
            while pending:
                for part in list(pending):
                    api = clients[part.model].client.with_options(max_retries=5)
                    batch = await api.batches.retrieve(part.batch_id)
                    _update(part, batch)
                    if part.status in TERMINAL:
                        part.finished_at = part.finished_at or time.time()
                        state.save()
                        await self.collect(state, part, api, by_cid, out)
                        pending.remove(part)
                        state.save()
                counts = [p.request_counts for p in state.parts if p in pending]
                finished = total - sum(p.requests for p in pending)
                progressed = sum((c.get("completed") or 0) + (c.get("failed") or 0) for c in counts)
                bar.n = min(total, finished + progressed)
                statuses: dict[str, int] = {}
                for p in pending:
                    statuses[p.status or "?"] = statuses.get(p.status or "?", 0) + 1
                failed = sum((p.request_counts.get("failed") or 0) for p in state.parts)
                bar.set_postfix_str(", ".join(f"{n} {s}" for s, n in statuses.items())
                                    + (f", {failed} failed" if failed else ""), refresh=False)
                bar.refresh()
                if pending:
                    await asyncio.sleep(self.poll_s)
        finally:
            bar.close()

    async def collect(self, state: BatchState, part: BatchPart, api: Any, by_cid: dict[str, Job],
                      out: IO[str]) -> None:
        """Download the batch's output and error files and write one record per line of this part."""
        seen: set[str] = set()
        pending: list[tuple[Record, EvalItem]] = []
        stem = (state.run_dir / part.input).with_suffix("")
        for file_id, suffix in ((part.output_file_id, "output"), (part.error_file_id, "errors")):
            if not file_id:
                continue
            path = stem.with_name(f"{stem.name}.{suffix}.jsonl")
            async with api.files.with_streaming_response.content(file_id) as resp:
                with path.open("wb") as fh:
                    async for chunk in resp.iter_bytes():
                        fh.write(chunk)
            with path.open("rb") as fh:
                for raw in fh:
                    if not raw.strip():
                        continue
                    line = json.loads(raw)
                    cid = line.get("custom_id")
                    if cid in seen or cid not in by_cid:
                        continue  # not this session's to write (already a record, or not asked)
                    seen.add(cid)
                    plan, item, r = by_cid[cid]
                    pending.append((self._record(plan, item, r, line_result(line, plan)), item))
                    if len(pending) >= FINISH_CHUNK:
                        await self._finish_and_write(pending, out)
        # Lines the batch never answered: a failed batch (validation), or an output file that lacks them.
        reason = "; ".join(part.errors) if part.errors else None
        kind = {"failed": "batch_failed", "expired": "batch_expired", "cancelled": "batch_cancelled"}.get(
            part.status or "", "batch_error")
        for cid in state.custom_ids(part):
            if cid in seen or cid not in by_cid:
                continue
            plan, item, r = by_cid[cid]
            message = (f"Batch API: batch {part.batch_id} ended {part.status} without an answer for this request"
                       + (f" ({reason})" if reason else ""))
            pending.append((self._record(plan, item, r, CallError(kind=kind, message=message[:500])), item))
        await self._finish_and_write(pending, out)
        part.collected = True

    def _record(self, plan: VariantPlan, item: EvalItem, repeat: int, result: Completion | CallError) -> Record:
        """The record a synchronous call with this result makes (and its answer cached as that call's)."""
        request = self.request_for(plan, item, repeat)
        if self.cache is not None and isinstance(result, Completion):
            self.cache.put(self.key_for(plan, request, repeat), {**cache_entry(result), "latency_s": None})
        return self.make_record(plan, item, repeat, request, result, time.time())

    async def _finish_and_write(self, pending: list[tuple[Record, EvalItem]], out: IO[str]) -> None:
        """Model-graded scores (a judge), as for synchronous records, then onto disk."""
        if not pending:
            return
        await self.finish_all([rec for rec, _ in pending], {item.id: item for _, item in pending})
        out.write("".join(rec.model_dump_json() + "\n" for rec, _ in pending))
        out.flush()
        for rec, _ in pending:
            self._count(rec)
        pending.clear()


@contextmanager
def _refusals(client: Any) -> Iterator[None]:
    """A permanent error from the Batch API (key, model, quota, a refused file) stops the run as a synchronous
    call's would (ModelRefused), naming the model and what to do."""
    try:
        yield
    except openai.APIStatusError as exc:
        kind, _, status = client.provider.classify(exc)
        if kind in PERMANENT_KINDS:
            raise client.refused(kind, status, exc) from None
        raise


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def _update(part: BatchPart, batch: Any) -> None:
    part.batch_id = batch.id
    part.status = batch.status
    counts = getattr(batch, "request_counts", None)
    if counts is not None:
        part.request_counts = {"total": counts.total, "completed": counts.completed, "failed": counts.failed}
    part.output_file_id = batch.output_file_id
    part.error_file_id = batch.error_file_id
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) if errors is not None else None
    if data:
        part.errors = [f"{e.code or 'error'}: {e.message or ''}"
                       + (f" (line {e.line})" if getattr(e, "line", None) else "") for e in data][:10]


async def _batch_for_file(api: Any, input_file_id: str) -> Any:
    """The batch made from this uploaded file, if one exists (created just before a crash)."""
    async for batch in api.batches.list(limit=100):
        if batch.input_file_id == input_file_id:
            return batch
    return None
