"""Issue 20, point 4: the team's own index. `rag.collection` queries an existing Chroma collection (on a real
`chroma run` server, or in a folder) instead of building one from docs/, and `rag.embedding` embeds through the
loopback fake's `/v1/embeddings` instead of MiniLM: batched, cached by text, priced into the RAG variant's cost
per request, refused with one line when its dimension does not match the collection's.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from harness.api import run
from harness.cli import main
from tests.conftest import DOCS, TEST_ITEMS, make_config
from tests.fakes.embeddings import fake_embedding, words
from tests.retrieval.test_chroma_server import ChromaServer

EMB_PRICE = 0.02  # text-embedding-3-small, USD per 1M tokens (harness/models/prices.yaml)
CHAT_COST = (100 * 0.15 + 10 * 0.60) / 1e6  # gpt-4o-mini: the fake answers with 100 prompt + 10 completion tokens
DIM = 64
# The team's documents: each holds the words of the messages it answers, so their vectors are near.
TEAM_DOCS = {
    "delivery": DOCS["delivery"] + " Where is my new card? It has not arrived after two weeks.",
    "security": DOCS["security"] + " Someone stole my card.",
    "refunds": DOCS["refunds"] + " I want my money back for the order.",
}


def _query(text: str) -> str:
    return f"Message: {text}"  # the task's input_template: what each item's query is


def _models(base_url: str) -> dict[str, Any]:
    return {"small": {"provider": "openai-compatible", "base_url": base_url, "model": "gpt-4o-mini",
                      "structured_output": "json_schema"},
            "emb": {"provider": "openai-compatible", "base_url": base_url, "model": "text-embedding-3-small"}}


def _config(tmp_path: Path, evalset: Path, base_url: str, rag: dict[str, Any], top_k: int = 2) -> Path:
    return make_config(tmp_path, evalset, base_url, models=_models(base_url), rag=rag,
                       variants=[{"name": "rag", "kind": "rag", "model": "small", "top_k": top_k}])


def _fill(collection: Any) -> None:
    ids = list(TEAM_DOCS)
    collection.add(ids=ids, documents=[TEAM_DOCS[i] for i in ids],
                   embeddings=np.stack([fake_embedding(TEAM_DOCS[i], DIM) for i in ids]))


def _expected_ranking(text: str, docs: dict[str, str]) -> list[str]:
    """What cosine similarity over the fake's vectors ranks first, computed here with numpy."""
    ids = list(docs)
    matrix = np.stack([fake_embedding(docs[i], DIM) for i in ids])
    scores = matrix @ fake_embedding(_query(text), DIM)
    return [ids[j] for j in np.argsort(-scores, kind="stable")]


def _records(run_dir: Path) -> dict[str, dict[str, Any]]:
    lines = (run_dir / "records.jsonl").read_text().splitlines()
    return {r["item_id"]: r for r in map(json.loads, lines)}


def _no_docs(evalset_dir: Path) -> Path:
    shutil.rmtree(evalset_dir / "docs")  # an existing collection needs no docs/
    return evalset_dir


def _embedding_tokens(texts: list[str]) -> int:
    return sum(len(words(t)) for t in texts)


# ---------------------------------------------------------------------------------- a real `chroma run` server


@pytest.mark.chroma_server
def test_existing_collection_on_a_chroma_server(tmp_path: Path, evalset_dir: Path, fake_server) -> None:
    fake_server.embedding_dim = DIM
    server = ChromaServer(tmp_path / "chroma-db").start()
    try:
        client = chromadb.HttpClient(host="127.0.0.1", port=server.port, settings=Settings(anonymized_telemetry=False))
        _fill(client.create_collection("team-kb", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}))
        cfg = _config(tmp_path, _no_docs(evalset_dir), fake_server.base_url,
                      {"collection": "team-kb", "server": server.url, "embedding": {"model": "emb", "batch_size": 2}})
        result = run(cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    finally:
        server.stop()

    records = _records(result.path)
    assert result.status == "completed" and len(records) == 4
    for item_id, text, _, _, expected_docs in TEST_ITEMS:
        rec = records[item_id]
        ranking = _expected_ranking(text, TEAM_DOCS)[:2]
        assert rec["retrieved_doc_ids"] == ranking
        assert rec["retrieval"]["recall_at_k"] == float(expected_docs[0] in ranking)
        assert rec["retrieval"]["mrr"] == (1 / (ranking.index(expected_docs[0]) + 1) if expected_docs[0] in ranking
                                           else 0.0)
        assert f"[{ranking[0]}]\n{TEAM_DOCS[ranking[0]]}" in rec["request"]["messages"][-1]["content"]
    # Each message's own document comes first (the team's documents hold the messages' words).
    assert [records[i]["retrieval"] for i in ("t1", "t2", "t3", "t4")] == [{"recall_at_k": 1.0, "mrr": 1.0}] * 4

    # Requests: the probe (t1, alone), then t2..t4 two per request. Each text's share of its request's tokens.
    sizes = [len(b["input"]) for b in fake_server.embedding_requests]
    assert sizes == [1, 2, 1]
    texts = [_query(t) for _, t, *_ in TEST_ITEMS]
    shares = {"t1": _embedding_tokens(texts[:1]), "t2": _embedding_tokens(texts[1:3]) / 2,
              "t3": _embedding_tokens(texts[1:3]) / 2, "t4": _embedding_tokens(texts[3:])}
    for item_id, tokens in shares.items():
        detail = records[item_id]["retrieval_cost"]
        assert detail["cached"] is False and detail["tokens"] == pytest.approx(tokens)
        assert records[item_id]["cost_usd"] == pytest.approx(CHAT_COST + tokens * EMB_PRICE / 1e6)
    summary = result.summary.set_index("variant").loc["rag"]
    assert summary["cost_per_request_usd"] == pytest.approx(
        CHAT_COST + sum(shares.values()) * EMB_PRICE / 1e6 / 4)
    rag = result.manifest.rag
    assert (rag["collection"], rag["server"], rag["existing"], rag["dimension"]) == ("team-kb", server.url, True, DIM)
    assert rag["embedding"]["model_id"] == "text-embedding-3-small"


# -------------------------------------------------------------------------------------- a collection in a folder


def _folder_collection(path: Path, name: str = "team-kb", dim: int = DIM, chunked: bool = False) -> None:
    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    coll = client.create_collection(name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
    if not chunked:
        _fill(coll)
        return
    # Two chunks per document, ids of their own, the text in a metadata field and no documents.
    rows = [(f"{doc}-{n}", doc, part) for doc, text in TEAM_DOCS.items()
            for n, part in enumerate(text.split(". ", 1))]
    coll.add(ids=[r[0] for r in rows], metadatas=[{"source": r[1], "body": r[2]} for r in rows],
             embeddings=np.stack([fake_embedding(r[2], dim) for r in rows]))


def test_chunked_collection_in_a_folder(tmp_path: Path, evalset_dir: Path, fake_server) -> None:
    fake_server.embedding_dim = DIM
    _folder_collection(tmp_path / "team-db", chunked=True)
    cfg = _config(tmp_path, _no_docs(evalset_dir), fake_server.base_url, top_k=3,
                  rag={"collection": "team-kb", "path": str(tmp_path / "team-db"), "doc_id_field": "source",
                       "text_field": "body", "embedding": {"model": "emb"}})
    result = run(cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    records = _records(result.path)
    assert len(records) == 4 and all(r["error"] is None for r in records.values())
    t2 = records["t2"]
    prompt = t2["request"]["messages"][-1]["content"]
    assert "[security]\nSomeone stole my card." in prompt  # the chunk's text, from the metadata field
    assert t2["retrieved_doc_ids"][0] == "security" and t2["retrieval"]["mrr"] == 1.0
    for rec in records.values():  # document ids, not chunk ids; a document retrieved twice counts once
        assert set(rec["retrieved_doc_ids"]) <= set(TEAM_DOCS)
        assert len(rec["retrieved_doc_ids"]) == len(set(rec["retrieved_doc_ids"]))
    assert result.manifest.rag["path"] == str(tmp_path / "team-db")


# ------------------------------------------------------------------------------------------ refused before calls


def _run_cli(cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["run", str(cfg), "--results-dir", str(tmp_path / "results"), "--no-progress", "--no-cache"])
    return code, capsys.readouterr().err.strip()


def test_dimension_mismatch_is_refused_with_one_line(tmp_path: Path, evalset_dir: Path, fake_server,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fake_server.embedding_dim = 8  # the collection stores 64
    _folder_collection(tmp_path / "team-db")
    rag = {"collection": "team-kb", "path": str(tmp_path / "team-db"), "embedding": {"model": "emb"}}
    code, err = _run_cli(_config(tmp_path, _no_docs(evalset_dir), fake_server.base_url, rag), tmp_path, capsys)
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err == (f"error: rag.collection: 'team-kb' in {tmp_path / 'team-db'} stores 64-dimensional embeddings, "
                   f"but the queries' embeddings by models.emb (text-embedding-3-small) have 8; set "
                   f"rag.embedding.model to the model the collection was built with")
    assert fake_server.requests == []  # no chat call
    assert len(fake_server.embedding_requests) == 1  # the one probe query

    # Without rag.embedding the queries are MiniLM's 384 dimensions: refused the same way.
    del rag["embedding"]
    code, err = _run_cli(_config(tmp_path, evalset_dir, fake_server.base_url, rag), tmp_path, capsys)
    assert code == 2 and "\n" not in err
    assert "stores 64-dimensional embeddings, but the queries' embeddings by the built-in MiniLM" in err
    assert "have 384" in err and fake_server.requests == []


def test_missing_collection_names_the_ones_there(tmp_path: Path, evalset_dir: Path, fake_server,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _folder_collection(tmp_path / "team-db", name="kb-2024")
    _folder_collection(tmp_path / "team-db", name="kb-2025")
    rag = {"collection": "team-kb", "path": str(tmp_path / "team-db"), "embedding": {"model": "emb"}}
    code, err = _run_cli(_config(tmp_path, evalset_dir, fake_server.base_url, rag), tmp_path, capsys)
    assert code == 2
    assert err == (f"error: rag.collection: no collection 'team-kb' in {tmp_path / 'team-db'}; "
                   f"the collections there: kb-2024, kb-2025")
    assert fake_server.requests == [] and fake_server.embedding_requests == []


def test_config_errors_name_the_field(tmp_path: Path, evalset_dir: Path, fake_server,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ({"collection": "kb"}, "collection: say where it is, with server (http://HOST:PORT) or path"),
        ({"path": "db"}, "path reads an existing collection: set collection"),
        ({"embedding": {"model": "nope"}}, "rag.embedding.model: unknown model 'nope' (models defined: emb, small)"),
    ]
    for rag, message in cases:
        code, err = _run_cli(_config(tmp_path, evalset_dir, fake_server.base_url, rag), tmp_path, capsys)
        assert code == 2 and message in err and "\n" not in err


def test_unpriced_or_refusing_embedding_model_stops_before_calls(tmp_path: Path, evalset_dir: Path, fake_server,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    fake_server.embedding_dim = DIM
    _folder_collection(tmp_path / "team-db")
    rag = {"collection": "team-kb", "path": str(tmp_path / "team-db"), "embedding": {"model": "emb"}}
    models = _models(fake_server.base_url)
    models["emb"]["model"] = "my-embedder"  # in no price table
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, models=models, rag=rag,
                      variants=[{"name": "rag", "kind": "rag", "model": "small"}])
    code, err = _run_cli(cfg, tmp_path, capsys)
    assert code == 2 and "\n" not in err and err.startswith("error: rag.embedding.model emb: ")
    assert "--allow-unpriced" in err and fake_server.embedding_requests == [] and fake_server.requests == []

    fake_server.embedding_fail_text, fake_server.embedding_fail_status = TEST_ITEMS[0][1], 401  # the probe's
    code, err = _run_cli(_config(tmp_path, evalset_dir, fake_server.base_url, rag), tmp_path, capsys)
    assert code == 2 and "\n" not in err and fake_server.requests == []
    assert err.startswith("error: rag.embedding: models.emb (text-embedding-3-small) refused the embeddings "
                          "request (HTTP 401: injected embeddings failure)")
    assert len(fake_server.embedding_requests) == 1  # not retried


# ------------------------------------------------------------------------------- batched, cached, failing calls


def test_query_embeddings_are_batched_and_cached(tmp_path: Path, evalset_dir: Path, fake_server) -> None:
    fake_server.embedding_dim = DIM
    _folder_collection(tmp_path / "team-db")
    cfg = _config(tmp_path, _no_docs(evalset_dir), fake_server.base_url,
                  {"collection": "team-kb", "path": str(tmp_path / "team-db"), "embedding": {"model": "emb",
                                                                                             "batch_size": 3}})
    first = run(cfg, results_dir=tmp_path / "results", progress=False)
    assert [b["input"] for b in fake_server.embedding_requests] == [
        [_query(TEST_ITEMS[0][1])], [_query(t) for _, t, *_ in TEST_ITEMS[1:]]]  # the probe, then one batch
    paid = sum(r["retrieval_cost"]["cost_usd"] for r in _records(first.path).values())
    assert paid == pytest.approx(_embedding_tokens([_query(t) for _, t, *_ in TEST_ITEMS]) * EMB_PRICE / 1e6)

    fake_server.embedding_requests.clear()
    second = run(cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    assert fake_server.embedding_requests == []  # every query vector came from the cache by text
    records, before = _records(second.path), _records(first.path)
    # Production embeds every request's query: a cached vector keeps its cost, the record says it was cached.
    for item_id, rec in records.items():
        assert rec["retrieval_cost"]["cached"] is True and before[item_id]["retrieval_cost"]["cached"] is False
        assert rec["retrieval_cost"]["tokens"] == pytest.approx(before[item_id]["retrieval_cost"]["tokens"])
        assert rec["cost_usd"] == pytest.approx(before[item_id]["cost_usd"]) and rec["cost_usd"] > CHAT_COST
    per_request = [r.summary.set_index("variant").loc["rag", "cost_per_request_usd"] for r in (first, second)]
    assert per_request[1] == pytest.approx(per_request[0])
    assert ({i: r["retrieved_doc_ids"] for i, r in records.items()}
            == {i: r["retrieved_doc_ids"] for i, r in before.items()})


def test_cached_vector_without_tokens_is_charged_an_estimate(tmp_path: Path, evalset_dir: Path,
                                                             fake_server, isolated_cache: Path) -> None:
    """A vector cache written before token counts were kept (no `tokens` column): its vectors are read, and
    each query is charged the harness's estimate from its text (one token per 4 characters), marked so."""
    fake_server.embedding_dim = DIM
    _folder_collection(tmp_path / "team-db")
    cfg = _config(tmp_path, _no_docs(evalset_dir), fake_server.base_url,
                  {"collection": "team-kb", "path": str(tmp_path / "team-db"), "embedding": {"model": "emb"}})
    run(cfg, results_dir=tmp_path / "results", progress=False)
    db = sqlite3.connect(isolated_cache / "embeddings.sqlite")
    db.executescript("CREATE TABLE old (key BLOB PRIMARY KEY, vec BLOB NOT NULL); "
                     "INSERT INTO old SELECT key, vec FROM vectors; DROP TABLE vectors; "
                     "ALTER TABLE old RENAME TO vectors;")
    db.close()
    fake_server.embedding_requests.clear()
    again = run(cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    assert fake_server.embedding_requests == []
    for item_id, text, *_ in TEST_ITEMS:
        cost = _records(again.path)[item_id]["retrieval_cost"]
        tokens = -(-len(_query(text)) // 4)
        assert cost["cached"] is True and cost["estimated"] is True and cost["tokens"] == tokens
        assert cost["cost_usd"] == pytest.approx(tokens * EMB_PRICE / 1e6)


def test_failing_embeddings_endpoint_makes_error_records(tmp_path: Path, evalset_dir: Path, fake_server) -> None:
    fake_server.embedding_dim = DIM
    fake_server.embedding_failures = 2  # transient: retried (Retry-After: 0) and answered
    fake_server.embedding_fail_text = TEST_ITEMS[2][1]  # t3's query fails on every attempt
    _folder_collection(tmp_path / "team-db")
    cfg = _config(tmp_path, _no_docs(evalset_dir), fake_server.base_url,
                  {"collection": "team-kb", "path": str(tmp_path / "team-db"), "embedding": {"model": "emb",
                                                                                             "batch_size": 1}})
    result = run(cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    records = _records(result.path)
    t3 = records["t3"]
    assert t3["error"].startswith("embeddings request to models.emb (text-embedding-3-small)")
    assert "failed after 5 attempt(s): server_error" in t3["error"]
    assert t3["error_kind"] == "server_error" and t3["retrieved_doc_ids"] is None and t3["retrieval"] is None
    assert all(records[i]["error"] is None and records[i]["retrieved_doc_ids"] for i in ("t1", "t2", "t4"))
    chat_inputs = [m["messages"][-1]["content"] for m in fake_server.requests]
    assert len(chat_inputs) == 3 and not any(c.endswith(_query(TEST_ITEMS[2][1])) for c in chat_inputs)  # no t3
    summary = result.summary.set_index("variant").loc["rag"]
    right = sum(bool(r["correct"]) for r in records.values())
    assert right >= 1 and records["t3"]["correct"] is None
    assert summary["errors"] == 1 and summary["accuracy"] == pytest.approx(right / 4)  # t3 counts, as wrong


# ------------------------------------------------------------------------------- the harness's own index


def test_built_index_with_an_embeddings_model_never_mixes_with_minilm(tmp_path: Path, evalset_dir: Path,
                                                                      fake_server) -> None:
    fake_server.embedding_dim = DIM
    index_dir = tmp_path / "index"
    minilm = run(_config(tmp_path, evalset_dir, fake_server.base_url, {"index_dir": str(index_dir)}),
                 results_dir=tmp_path / "results", progress=False, use_cache=False)
    assert fake_server.embedding_requests == []
    cfg = _config(tmp_path, evalset_dir, fake_server.base_url,
                  {"index_dir": str(index_dir), "embedding": {"model": "emb", "batch_size": 8}})
    endpoint = run(cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    rag = endpoint.manifest.rag
    assert rag["collection"] != minilm.manifest.rag["collection"] and rag["embedded"] == len(DOCS)
    # The documents (one request of 3), then the queries (one of 4): nothing was embedded by MiniLM here.
    assert [len(b["input"]) for b in fake_server.embedding_requests] == [3, 4]
    assert rag["embedding"]["tokens_before_calls"] == _embedding_tokens(list(DOCS.values()))
    records = _records(endpoint.path)
    for item_id, text, *_ in TEST_ITEMS:
        assert records[item_id]["retrieved_doc_ids"] == _expected_ranking(text, DOCS)[:2]
    client = chromadb.PersistentClient(path=str(index_dir), settings=Settings(anonymized_telemetry=False))
    names = {c.name for c in client.list_collections()}
    assert {rag["collection"], minilm.manifest.rag["collection"]} <= names  # both kept, neither overwritten
    again = run(cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    assert again.manifest.rag["reused"] and len(fake_server.embedding_requests) == 2  # nothing embedded again


def test_batch_mode_never_sends_an_item_whose_embedding_failed(tmp_path: Path, evalset_dir: Path,
                                                               fake_server) -> None:
    from tests.conftest import right_answer
    from tests.fakes.batch_server import FakeBatchServer

    fake_server.embedding_dim = DIM
    fake_server.embedding_fail_text = TEST_ITEMS[2][1]
    _folder_collection(tmp_path / "team-db")
    with FakeBatchServer(right_answer, models=["gpt-4o-mini"], turnaround_s=0.05) as batch_api:
        models = _models(batch_api.base_url)
        models["emb"]["base_url"] = fake_server.base_url  # embeddings stay synchronous, on their own endpoint
        cfg = make_config(tmp_path, _no_docs(evalset_dir), batch_api.base_url, models=models,
                          variants=[{"name": "rag", "kind": "rag", "model": "small", "top_k": 2}],
                          rag={"collection": "team-kb", "path": str(tmp_path / "team-db"),
                               "embedding": {"model": "emb", "batch_size": 1}},
                          run={"concurrency": 4, "max_tokens": 64, "seed": 7, "mode": "batch", "batch_poll_s": 0.05})
        result = run(cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    records = _records(result.path)
    assert records["t3"]["error_kind"] == "server_error" and "embeddings request" in records["t3"]["error"]
    assert all(records[i]["error"] is None for i in ("t1", "t2", "t4"))
    assert json.loads((result.path / "batches.json").read_text())["batches"][0]["requests"] == 3
