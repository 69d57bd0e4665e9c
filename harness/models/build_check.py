"""Can this machine run the installed llama.cpp? Asked once per build and CPU, before the embedded server starts.

llama-cpp-python compiles llama.cpp for the compiling machine's CPU. A build that uses CPU features this machine
cannot run (AMX kernels on some Xeons, seen here with 0.3.36) loads the model, lists it, and dies on the first
completion: every call of the run would then be a connection error. So a separate short-lived process asks one
token of the model first; a crash there stops the run with the fix, and the running server's state (its prompt
cache) is never touched by the check. A pass is remembered per llama-cpp-python release, install and CPU.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

from harness.models import server_log
from harness.models.gguf import LocalModelError, cache_dir

_ASK_ONE_TOKEN = ("import sys; from llama_cpp import Llama; "
                  "Llama(model_path=sys.argv[1], n_ctx=64, verbose=False).create_completion('ok', max_tokens=1)")


def _fingerprint() -> str:
    """The installed llama.cpp (its files' path and time) and this CPU's feature flags."""
    spec = importlib.util.find_spec("llama_cpp")
    where = Path(spec.origin).parent if spec is not None and spec.origin else None
    stamp = f"{where}:{where.stat().st_mtime_ns}" if where is not None else "missing"
    try:
        flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    except OSError:
        flags = ""
    return hashlib.sha256(f"{stamp}|{flags}".encode()).hexdigest()[:16]


def check_build(gguf: Path, *, command: list[str] | None = None, timeout_s: float = 300) -> None:
    """LocalModelError naming the signal and the fix when llama.cpp crashes on one token of `gguf`. Any other
    failure (a slow machine, a module missing) is left to the server's own start, which reports it."""
    marker = cache_dir() / f"llama-build-ok-{_fingerprint()}"
    if marker.exists():
        return
    try:
        done = subprocess.run(command or [sys.executable, "-c", _ASK_ONE_TOKEN, str(gguf)],
                              capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return
    if done.returncode < 0:
        raise LocalModelError(server_log.crashed(done.returncode))
    if done.returncode == 0:
        marker.write_text("one token answered\n")
