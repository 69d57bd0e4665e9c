"""The embedded model server: start llama-cpp-python's server on 127.0.0.1, health-check it, stop it.

The model file itself comes from `harness.models.gguf` (assembled once into a shared cache); ports and HTTP
requests to the child are `harness.models.probe`, reading its log for error messages `harness.models.server_log`.

Why a child process instead of loading `llama_cpp.Llama` in-process: every other model in the harness is
reached over the OpenAI API, so the local model goes through the very same client, retry and parsing code;
and a crashing or hung llama.cpp cannot take the run (and its half-written records) down with it.

The price of a child process is that it can outlive us. Four layers keep it from becoming an orphan:
`stop()` via `with`/`finally`; an `atexit` hook; `PR_SET_PDEATHSIG` on Linux (kernel sends SIGTERM when the
parent dies, even by SIGKILL); and a watchdog thread in the child that exits when its stdin pipe from the
parent closes (covers non-Linux systems and parents that started the server from a short-lived thread).
The child-side two are `harness.models.orphan_guard`.

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
import http.client
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from harness.models import build_check, orphan_guard, probe, server_log
from harness.models.gguf import LocalModelError, cache_dir, check_gguf, ensure_gguf

# cache_dir and ensure_gguf live in harness.models.gguf; re-exported for the callers that reach the embedded
# model through this module (the runner, `harness serve`, `harness finetune local`).
__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "LocalModelError",
    "LocalModelSpec",
    "LocalServer",
    "cache_dir",
    "ensure_gguf",
    "serve_forever",
]

DEFAULT_LOCAL_MODEL = "gemma-3-270m"
SERVER_PACKAGE = "llama-cpp-python[server]"

_STOP_GRACE_S = 5.0
# Modules the server imports at start-up; checked in the parent so a missing extra is a clear error,
# not a traceback buried in the server log.
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
# Environment variables the server reads *in preference to* its config file (see llama_cpp/server/__main__.py).
_ENV_OVERRIDES = ("HOST", "PORT", "CONFIG_FILE")

@dataclass
class LocalModelSpec:
    """One model id the server answers to: a base GGUF, optionally with a LoRA adapter over it."""

    alias: str
    gguf: Path
    lora: Path | None = None
    # The single source of the server settings that change answers: _config() starts the server with these
    # and cache_identity() keys the response cache on them.
    chat_format: str = "gemma"  # the GGUF has no chat template; without this llama.cpp falls back to llama-2
    n_ctx: int = 2048

    def cache_identity(self) -> str:
        """What makes this model's answers what they are, for the response cache: the model and adapter
        files (path, size, mtime: a retrained adapter is a new model), the llama-cpp-python release and the
        settings the server is started with. Not the port, which is new on every run."""
        parts = [f"gguf={_file_id(self.gguf)}"]
        if self.lora is not None:
            parts.append(f"lora={_file_id(self.lora)}")
        parts += [f"llama-cpp-python={llama_cpp_version()}", f"chat_format={self.chat_format}",
                  f"n_ctx={self.n_ctx}"]
        return "|".join(parts)


def _file_id(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def llama_cpp_version() -> str:
    """The installed llama-cpp-python release: a new release can answer the same prompt differently."""
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return "not-installed"


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
        if self.port is not None and probe.port_taken(self.port):
            raise LocalModelError(f"port {self.port} on 127.0.0.1 is already in use; choose another port or omit it")
        attempts = 1 if self.port is not None else 3  # a port picked by us can be taken before the child binds
        for attempt in range(attempts):
            port = self.port if self.port is not None else probe.free_port()
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
            check_gguf(m.gguf, f"model {m.alias!r}: gguf")
            if m.lora is not None:
                check_gguf(m.lora, f"model {m.alias!r}: lora adapter")
        build_check.check_build(self.models[0].gguf)

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
        env[orphan_guard.TMPDIR_ENV] = str(self._tmpdir)
        with self._active_log.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"\n=== harness: starting llama_cpp.server on 127.0.0.1:{port} ===\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                orphan_guard.server_command(config_path),
                stdin=subprocess.PIPE,  # held only by us: the child's watchdog exits when it closes
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                **orphan_guard.popen_kwargs(),
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
                if self.port is None and server_log.port_in_use(self._log()):
                    raise _PortInUse
                raise LocalModelError(self._failure(f"the local model server exited with code {code}"))
            try:
                if wanted <= probe.served_model_ids(url):
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
            try:
                probe.post_json(f"http://127.0.0.1:{port}/extras/tokenize", {"model": alias, "input": "ok"},
                                timeout=max(self.startup_timeout_s, 10))
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", errors="replace")[:500]
                raise LocalModelError(
                    self._failure(f"model {alias!r} failed to load its LoRA adapter (HTTP {exc.code}: {detail})")
                ) from None
        # llama-cpp-python 0.3.x misses llama.cpp's NULL return for an adapter that does not fit the base
        # (its ctypes restype is a POINTER, never None) and serves the plain base model instead; only the
        # log tells. Without this check a broken fine-tune would be scored as if it were the base model.
        rejected = server_log.lora_rejections(self._log())
        if rejected:
            raise LocalModelError(
                self._failure(
                    "llama.cpp rejected a LoRA adapter (was it trained on this base model?): " + rejected[-1].strip()
                )
            )

    def _log(self) -> list[str]:
        return server_log.read_log(self._active_log, self._log_offset)

    def _failure(self, headline: str) -> str:
        models = ", ".join(f"{m.alias}={m.gguf}" + (f" + lora {m.lora}" if m.lora else "") for m in self.models)
        where = f"full log: {self._active_log}" if self.log_path is not None else ""
        parts = (f"{headline} (models: {models})", where, server_log.explain(self._log()))
        return "\n".join(part for part in parts if part)

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
