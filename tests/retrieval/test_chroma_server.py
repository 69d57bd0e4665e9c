"""rag.server: the RAG index on a real Chroma server, started here with the `chroma run` command that the
chromadb package installs, on 127.0.0.1.

Marked `chroma_server` (deselect with `-m "not chroma_server"`); each server is stopped when its test ends.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import chromadb
import httpx
import pytest
from chromadb.config import Settings
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

from harness.config import RagSettings, chroma_server_address
from harness.retrieval.embeddings import EMBEDDING_FUNCTION_NAME, MiniLMEmbeddingFunction
from harness.retrieval.index import ChromaServerError, Doc, RagIndex, docs_hash
from tests.retrieval.test_index import DOCS, CountingEmbed

pytestmark = pytest.mark.chroma_server

QUESTIONS = [
    "when will my new card arrive?",
    "what rate do you use to convert euros to dollars",
    "I forgot my PIN, how do I change it",
    "my top up was declined",
    "how long until a merchant refund shows up",
    "I want to close my account",
]


def _chroma_command() -> str:
    beside_python = Path(sys.executable).parent / "chroma"
    found = str(beside_python) if beside_python.exists() else shutil.which("chroma")
    assert found, "the `chroma` command (installed by the chromadb package) is not on PATH"
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    """`chroma run --path DIR --host 127.0.0.1 --port N` as a child process, ready once its heartbeat answers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = path.parent / f"chroma-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> ChromaServer:
        cmd = [_chroma_command(), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"chroma run did not answer its heartbeat within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "db").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_default_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chroma's default embedding function downloads an ONNX model: any use of it fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Chroma's default embedding function was used (it would download a model)")

    monkeypatch.setattr(ONNXMiniLM_L6_V2, "_download_model_if_not_exists", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__call__", refuse)


@pytest.fixture()
def counting_embed(monkeypatch: pytest.MonkeyPatch) -> CountingEmbed:
    from harness.retrieval import embeddings

    counter = CountingEmbed()
    monkeypatch.setattr(embeddings, "embed", counter)
    return counter


def _passages(index: RagIndex) -> list[list[tuple[str, str, float]]]:
    return [[(p.chunk_id, p.text, round(p.score, 4)) for p in ps] for ps in index.query_many(QUESTIONS, k=3)]


def test_server_index_is_built_once_and_matches_the_embedded_store(
    chroma_server: ChromaServer, tmp_path: Path, counting_embed: CountingEmbed
) -> None:
    first = RagIndex.build(DOCS, None, "kb-server", server=chroma_server.url, show_progress=False)
    assert not first.reused
    assert sum(counting_embed.calls) == len(DOCS) and first.embedded == len(DOCS)

    counting_embed.calls.clear()
    # Another run (or machine): only the server address in common; same collection, 0 texts embedded.
    second = RagIndex.build(list(reversed(DOCS)), tmp_path / "unused", "kb-server", server=chroma_server.url,
                            show_progress=False)
    assert second.reused and second.embedded == 0
    assert counting_embed.calls == []
    assert not (tmp_path / "unused").exists()  # the embedded store is not touched

    embedded = RagIndex.build(DOCS, tmp_path / "embedded", "kb-server", show_progress=False)
    assert embedded.collection_name == second.collection_name == first.collection_name
    assert embedded.docs_hash == second.docs_hash == docs_hash(DOCS)
    assert _passages(second) == _passages(embedded)
    assert [ps[0][0] for ps in _passages(second)] == [
        "card-delivery#0", "exchange-rates#0", "pin-change#0", "top-up-failed#0", "refunds#0", "account-closure#0"]

    # What the server holds, seen by a client of its own: the collection, its hash and our embedding function.
    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server.port,
                                 settings=Settings(anonymized_telemetry=False))
    coll = client.get_collection(first.collection_name, embedding_function=MiniLMEmbeddingFunction())  # type: ignore[arg-type]
    assert coll.count() == len(DOCS)
    assert coll.metadata["docs_hash"] == docs_hash(DOCS)
    assert coll.configuration_json["embedding_function"]["name"] == EMBEDDING_FUNCTION_NAME
    # The guard is live over HTTP: a collection without our function would have used (and downloaded) Chroma's.
    with pytest.raises(AssertionError, match="default embedding function was used"):
        client.create_collection("guard-check").add(ids=["x"], documents=["x"])
    client.delete_collection("guard-check")


def test_server_index_interrupted_or_built_twice_at_once(
    chroma_server: ChromaServer, counting_embed: CountingEmbed
) -> None:
    docs = [Doc(d.id, d.text + " (concurrent)") for d in DOCS]
    results: list[RagIndex] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(RagIndex.build(docs, None, "kb-race", server=chroma_server.url, show_progress=False))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    # Two machines starting on the same new index at once (a CI matrix on a fresh server).
    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 2
    assert results[0].collection_name == results[1].collection_name
    assert results[0].collection.count() == len(DOCS)

    # An interrupted build is completed, embedding only what is missing.
    results[0].collection.delete(ids=["pin-change#0", "refunds#0"])
    counting_embed.calls.clear()
    again = RagIndex.build(docs, None, "kb-race", server=chroma_server.url, show_progress=False)
    assert not again.reused and again.embedded == 2 and counting_embed.calls == [2]
    assert RagIndex.build(docs, None, "kb-race", server=chroma_server.url, show_progress=False).reused


def test_server_keeps_the_collections_of_other_doc_versions(chroma_server: ChromaServer) -> None:
    old = RagIndex.build(DOCS[:3], None, "kb-versions", server=chroma_server.url, show_progress=False)
    new = RagIndex.build(DOCS, None, "kb-versions", server=chroma_server.url, show_progress=False)
    assert new.collection_name != old.collection_name
    # Another machine may still be running on the old docs: its collection stays.
    assert RagIndex.build(DOCS[:3], None, "kb-versions", server=chroma_server.url, show_progress=False).reused


def test_unreachable_server_is_one_readable_line(tmp_path: Path, fake_server) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ChromaServerError) as exc:
        RagIndex.build(DOCS, None, "kb", server=url, show_progress=False)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"rag.server: cannot reach the Chroma server at {url}")
    assert "chroma run" in message and "remove rag.server" in message

    # Something answers there, but it is not Chroma (here: the loopback OpenAI server).
    other = fake_server.base_url.removesuffix("/v1")
    with pytest.raises(ChromaServerError, match=rf"^rag\.server: no Chroma server answers at {other} \(") as exc:
        RagIndex.build(DOCS, None, "kb", server=other, show_progress=False)
    assert "\n" not in str(exc.value)


def test_server_that_goes_away_mid_run_is_one_readable_line(tmp_path: Path) -> None:
    server = ChromaServer(tmp_path / "db").start()
    try:
        index = RagIndex.build(DOCS, None, "kb", server=server.url, show_progress=False)
    finally:
        server.stop()
    with pytest.raises(ChromaServerError, match=r"^rag\.server: cannot reach the Chroma server at "):
        index.query("card", k=1)


def test_rag_server_setting() -> None:
    assert chroma_server_address("http://chroma.internal:8000") == ("chroma.internal", 8000, False)
    assert chroma_server_address("http://10.0.0.5") == ("10.0.0.5", 8000, False)
    assert chroma_server_address("https://chroma.example.com/") == ("chroma.example.com", 443, True)
    assert RagSettings(server="http://127.0.0.1:8001").server == "http://127.0.0.1:8001"
    for bad in ("chroma.internal:8000", "http://h:8000/api/v2", "ftp://h:1", "http://h:99999"):
        with pytest.raises(ValueError):
            RagSettings(server=bad)
    with pytest.raises(ValueError, match="not both"):
        RagSettings(server="http://h:1", index_dir=Path("x"))


# ------------------------------------------------------------------------------- through `harness run`


def test_run_with_rag_server_builds_once_and_reuses(
    chroma_server: ChromaServer, tmp_path: Path, evalset_dir: Path, fake_server, counting_embed: CountingEmbed
) -> None:
    from harness.api import run
    from tests.conftest import make_config

    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url,
                      variants=[{"name": "rag", "kind": "rag", "model": "small", "top_k": 2}],
                      rag={"server": chroma_server.url})
    first = run(cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    second = run(cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    rag1, rag2 = first.manifest.rag, second.manifest.rag
    assert rag1["server"] == rag2["server"] == chroma_server.url and "index_dir" not in rag1
    assert (rag1["reused"], rag1["embedded"]) == (False, rag1["chunks"])
    assert (rag2["reused"], rag2["embedded"]) == (True, 0)
    assert rag2["collection"] == rag1["collection"]
    assert not (tmp_path / "cache" / "chroma").exists()  # nothing in the embedded store
    assert json.loads((second.path / "config.json").read_text())["rag"]["server"] == chroma_server.url

    # The same run on the embedded store retrieves the same passages into the same prompts.
    embedded_cfg = make_config(tmp_path, evalset_dir, fake_server.base_url,
                               variants=[{"name": "rag", "kind": "rag", "model": "small", "top_k": 2}])
    embedded = run(embedded_cfg, results_dir=tmp_path / "results", progress=False, use_cache=False)
    assert "server" not in embedded.manifest.rag and embedded.manifest.rag["collection"] == rag1["collection"]
    over_http = {r["item_id"]: (r["retrieved_doc_ids"], r["request"]) for r in _records(second.path)}
    in_process = {r["item_id"]: (r["retrieved_doc_ids"], r["request"]) for r in _records(embedded.path)}
    assert over_http == in_process and len(over_http) == 4


def test_run_with_unreachable_rag_server_exits_2_with_one_line(
    tmp_path: Path, evalset_dir: Path, fake_server, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main
    from tests.conftest import make_config

    url = f"http://127.0.0.1:{_free_port()}"
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url,
                      variants=[{"name": "rag", "kind": "rag", "model": "small"}], rag={"server": url})
    code = main(["run", str(cfg), "--results-dir", str(tmp_path / "results"), "--no-progress", "--no-cache"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith(f"error: rag.server: cannot reach the Chroma server at {url}")
    assert fake_server.requests == []  # stopped before the first call


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
