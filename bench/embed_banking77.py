"""Benchmark: index all banking77 training texts in Chroma, rebuild, and score 1-NN intent accuracy.

Why: the RAG variant and similarity-based few-shot selection both rest on these embeddings; this
shows (1) how long a cold index build of ~10k short texts takes on this machine, (2) that a second
build with the same inputs reuses the index without embedding anything, and (3) that the vectors
carry the task's meaning (nearest training text's intent = test text's intent).

Usage: python bench/embed_banking77.py [--data ../shared/datasets/banking77] [--keep DIR]
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from harness.retrieval import embeddings  # noqa: E402
from harness.retrieval.index import Doc, RagIndex  # noqa: E402


def _read(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared/datasets/banking77")
    parser.add_argument("--keep", type=Path, help="build the index here and keep it")
    args = parser.parse_args()

    train = _read(args.data / "train.csv")
    test = _read(args.data / "test.csv")
    label_of = {f"train-{i}": label for i, (_, label) in enumerate(train)}
    docs = [Doc(f"train-{i}", text) for i, (text, _) in enumerate(train)]

    calls: list[int] = []
    embed_seconds: list[float] = []
    real_embed = embeddings.embed

    def counting_embed(texts):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        start = time.perf_counter()
        out = real_embed(texts)
        embed_seconds.append(time.perf_counter() - start)
        return out

    embeddings.embed = counting_embed  # count what the second build embeds (should be nothing)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-banking77-"))
    try:
        embeddings.embed(["warm-up: load the weights before timing"])
        calls.clear()
        embed_seconds.clear()
        start = time.perf_counter()
        index = RagIndex.build(docs, folder, "banking77-train", show_progress=False)
        build_s = time.perf_counter() - start
        embedded_on_build = sum(calls)
        embed_s = sum(embed_seconds)

        calls.clear()
        start = time.perf_counter()
        again = RagIndex.build(docs, folder, "banking77-train", show_progress=False)
        rebuild_s = time.perf_counter() - start
        reembedded = sum(calls)

        start = time.perf_counter()
        hits = again.query_many([text for text, _ in test], k=1)
        query_s = time.perf_counter() - start
        correct = sum(label_of[h[0].doc_id] == label for h, (_, label) in zip(hits, test, strict=True))
    finally:
        embeddings.embed = real_embed
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)

    result = {
        "texts": len(docs),
        "chunks": index.n_chunks,
        "embedded_on_build": embedded_on_build,
        "build_s": round(build_s, 2),
        "embed_s_within_build": round(embed_s, 2),
        "embed_s_per_100_texts": round(100 * embed_s / len(docs), 3),
        "rebuild_s": round(rebuild_s, 3),
        "reused_on_rebuild": again.reused,
        "reembedded_on_rebuild": reembedded,
        "test_texts": len(test),
        "query_all_test_s": round(query_s, 2),
        "nn_accuracy_full_test": round(correct / len(test), 4),
        "majority_class_share": round(
            Counter(label for _, label in test).most_common(1)[0][1] / len(test), 4
        ),
        "cpus": len(os.sched_getaffinity(0)),
        "loadavg_1m_at_end": os.getloadavg()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
