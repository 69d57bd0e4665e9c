"""Few-shot by similarity and RAG prompts are prepared batch by batch while calls are in flight, their query
embeddings are kept in the cache by text, and the prompts equal the ones prepared up front."""

from __future__ import annotations

import threading
import time

import numpy as np

from harness.api import run
from harness.config import VariantConfig
from harness.data.evalset import load_evalset
from harness.prompts.kinds.base import PrepareContext, kind_of
from harness.retrieval import embeddings
from harness.retrieval.vector_cache import VectorCache
from harness.rundir.folder import read_records
from harness.runner.prompt_stream import batches
from harness.runner.runner import RunOptions
from tests.conftest import make_config, right_answer
from tests.fakes.openai_server import FakeOpenAIServer

VARIANTS = [{"name": "baseline", "kind": "baseline", "model": "small"},
            {"name": "similar", "kind": "few_shot", "model": "small", "shots": 2, "selection": "similar"},
            {"name": "rag", "kind": "rag", "model": "small", "top_k": 1}]


def do_run(cfg, tmp_path, **kw):
    return run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False, use_cache=False, **kw))


def test_streamed_prompts_equal_the_up_front_ones(tmp_path, evalset_dir, fake_server, isolated_cache):
    res = do_run(make_config(tmp_path, evalset_dir, fake_server.base_url, variants=VARIANTS), tmp_path)
    assert res.status == "completed"
    recs = {(r.variant, r.item_id): r for r in read_records(res.run_dir / "records.jsonl")}
    assert len(recs) == 12 and not any(r.error for r in recs.values())

    ev = load_evalset(evalset_dir)
    ctx = PrepareContext(ev, seed=7, cache_dir=isolated_cache)  # the run's index, reused
    for v in VARIANTS[1:]:
        eager = kind_of(VariantConfig(**v)).prepare(ctx, ev.test, system_role=True)
        for item in ev.test:
            r = recs[(v["name"], item.id)]
            assert r.request["messages"] == eager[item.id].messages
            assert r.shot_ids == eager[item.id].shot_ids and r.retrieved_doc_ids == eager[item.id].retrieved_doc_ids
    # Retrieval finds each ticket's document; the nearest training ticket sits next to the question.
    assert all(recs[("rag", i)].retrieval.recall_at_k == 1.0 for i in ("t2", "t3", "t4"))
    assert recs[("similar", "t2")].shot_ids[-1] == "r5"  # "my card was stolen at the station"
    manifest = res.run_dir / "manifest.json"
    assert '"prompt_stream_s"' in manifest.read_text()


def test_query_embeddings_are_cached_by_text(tmp_path, evalset_dir, fake_server, isolated_cache, monkeypatch):
    embedded: list[str] = []
    real = embeddings.embed

    def counting(texts):
        embedded.extend(texts)
        return real(texts)

    monkeypatch.setattr(embeddings, "embed", counting)
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, variants=VARIANTS)
    do_run(cfg, tmp_path)
    first = list(embedded)
    ev = load_evalset(evalset_dir)
    test_texts = {ev.render_input(i) for i in ev.test}
    # Each test text was embedded once for both retrieval variants; the pool once; the docs by the index.
    assert sorted(t for t in first if t in test_texts) == sorted(test_texts)
    embedded.clear()
    do_run(cfg, tmp_path)  # the same items again: nothing to embed
    assert embedded == []
    cache = VectorCache(isolated_cache / "embeddings.sqlite")
    vecs = cache.embed(sorted(test_texts))
    assert cache.computed == 0 and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)


def test_calls_go_out_while_queries_are_embedded(tmp_path, evalset_dir, isolated_cache, monkeypatch):
    """A slow embedding model holds back only the retrieval variants: the baseline's calls are answered while
    the queries are still being embedded."""
    real = embeddings.embed
    spans: list[tuple[float, float, int]] = []
    ev = load_evalset(evalset_dir)
    test_texts = {ev.render_input(i) for i in ev.test}

    def slow(texts):
        t0 = time.monotonic()
        out = real(texts)
        if test_texts & set(texts):  # the items' queries, not the pool or the docs
            time.sleep(1.0)
        spans.append((t0, time.monotonic(), len(texts)))
        return out

    arrivals: list[tuple[float, bool]] = []
    lock = threading.Lock()

    def handler(body):
        with lock:
            baseline = len(body["messages"]) == 2 and "Reference documents" not in body["messages"][-1]["content"]
            arrivals.append((time.monotonic(), baseline))
        return right_answer(body)

    monkeypatch.setattr(embeddings, "embed", slow)
    with FakeOpenAIServer(handler, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, evalset_dir, srv.base_url, variants=VARIANTS)
        res = do_run(cfg, tmp_path)
    assert res.status == "completed"
    query_spans = [s for s in spans if s[1] - s[0] >= 1.0]
    assert query_spans, spans
    baseline_times = [t for t, baseline in arrivals if baseline]
    assert len(baseline_times) == 4
    assert max(baseline_times) < query_spans[0][1], "every baseline call was answered before the queries embedded"


def test_batches_start_small():
    items = list(range(300))
    sizes = [len(b) for b in batches(items)]  # type: ignore[arg-type]
    assert sizes[:3] == [16, 48, 128] and sum(sizes) == 300
