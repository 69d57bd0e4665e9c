"""Reading the embedded server's log: the lines one start wrote, and the few that say what went wrong.

The server (llama.cpp under llama-cpp-python) reports most failures only in its log: a model that does not
load, a port already taken, a LoRA adapter that does not fit its base. LocalServer turns these lines into
the message of its LocalModelError.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

_LORA_REJECTED = re.compile(r"fail\w*\b.*\blora|\blora\b.*\b(fail\w*|error)\b", re.IGNORECASE)
_ERROR_LINE = re.compile(r"error|failed|exception|not found|no such file", re.IGNORECASE)
_LOG_TAIL_LINES = 20


def read_log(path: Path | None, offset: int) -> list[str]:
    """The lines this start wrote (a log_path may hold earlier runs' logs above them)."""
    if path is None:
        return []
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []


def explain(lines: list[str]) -> str:
    """The few log lines that say what went wrong, then the tail; llama.cpp's reason sits above a traceback."""
    errors = [ln for ln in lines if _ERROR_LINE.search(ln) and not ln.startswith((" ", "Traceback"))]
    parts = []
    if errors:
        parts.append("errors in its log:\n  " + "\n  ".join(dict.fromkeys(errors[-8:])))
    if lines:
        parts.append("last lines of its log:\n" + "\n".join(lines[-_LOG_TAIL_LINES:]))
    return "\n".join(parts)


def lora_rejections(lines: list[str]) -> list[str]:
    """Lines where llama.cpp refused a LoRA adapter (llama-cpp-python 0.3.x serves the base model anyway)."""
    return [ln for ln in lines if _LORA_REJECTED.search(ln)]


def port_in_use(lines: list[str]) -> bool:
    """Whether the server failed to bind its port (another process took it between our check and its bind)."""
    return any("address already in use" in ln.lower() for ln in lines)


def crashed(code: int | None) -> str:
    """Why llama.cpp died on one token. Killed by a signal there, it is almost always a build for CPU features
    this machine cannot run (llama-cpp-python compiles for the compiling CPU)."""
    if code is None or code >= 0:
        return f"llama.cpp exited with code {code} on a first one-token completion"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return (f"llama.cpp crashed on a first one-token completion ({name}): llama-cpp-python was most likely "
            f"compiled for CPU features this machine cannot run (a native build using AMX or AVX-512); install the "
            f"portable build with `make clean-venv && make install`, or reinstall it with "
            f"CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF "
            f"-DGGML_AMX_BF16=OFF\" pip install --force-reinstall --no-cache-dir llama-cpp-python")
