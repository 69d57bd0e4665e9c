"""A llama.cpp build this CPU cannot run lists its models, then dies on the first completion (a native build's
AMX kernels segfault on some Xeons): the embedded server's start says so, with how to fix it, instead of a run
whose every call is a connection error. The check runs in its own process and is remembered once it passes."""

from __future__ import annotations

import signal
import sys

import pytest

from harness.models import build_check
from harness.models.gguf import LocalModelError
from harness.models.server_log import crashed

SEGFAULT = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
ANSWERS = [sys.executable, "-c", "print('ok')"]
FAILS = [sys.executable, "-c", "raise SystemExit(1)"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


def test_a_build_that_crashes_on_one_token_is_a_clear_error(tmp_path):
    with pytest.raises(LocalModelError) as err:
        build_check.check_build(tmp_path / "m.gguf", command=SEGFAULT)
    text = str(err.value)
    assert "crashed on a first one-token completion (SIGSEGV)" in text
    assert "make clean-venv && make install" in text and "-DGGML_NATIVE=OFF" in text


def test_a_pass_is_remembered_and_a_failure_is_not(tmp_path):
    build_check.check_build(tmp_path / "m.gguf", command=FAILS)  # not a crash: left to the server's start
    with pytest.raises(LocalModelError):
        build_check.check_build(tmp_path / "m.gguf", command=SEGFAULT)  # nothing remembered: asked again
    build_check.check_build(tmp_path / "m.gguf", command=ANSWERS)
    build_check.check_build(tmp_path / "m.gguf", command=SEGFAULT)  # remembered: not asked again


def test_exit_codes_read_as_signals_or_codes():
    assert "(SIGILL)" in crashed(-signal.SIGILL)
    assert crashed(3) == "llama.cpp exited with code 3 on a first one-token completion"
