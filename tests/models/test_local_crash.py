"""A llama.cpp build this CPU cannot run lists its models, then dies on the first completion (a native build's
AMX kernels segfault on some Xeons): the server start says so, with how to fix it, instead of a run whose every
call is a connection error."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.models import probe
from harness.models.gguf import LocalModelError
from harness.models.local import LocalModelSpec, LocalServer
from harness.models.server_log import crashed


def test_a_server_killed_by_a_signal_on_its_first_completion_is_a_clear_error(tmp_path):
    server = LocalServer([LocalModelSpec(alias="m", gguf=tmp_path / "m.gguf")], log_path=tmp_path / "server.log")
    # a real process that dies of SIGSEGV, and a port nobody listens on: what a crashed server leaves behind
    server._proc = subprocess.Popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    server._proc.wait(timeout=30)
    with pytest.raises(LocalModelError) as err:
        server._first_completion(probe.free_port())
    text = str(err.value)
    assert "crashed on its first completion (SIGSEGV)" in text
    assert "make clean-venv && make install" in text and "-DGGML_NATIVE=OFF" in text


def test_a_completion_that_fails_while_the_server_lives_is_left_to_the_run(tmp_path):
    server = LocalServer([LocalModelSpec(alias="m", gguf=Path(tmp_path / "m.gguf"))])
    server._proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        server._first_completion(probe.free_port())  # refused, but the process runs on: no error here
    finally:
        server._proc.kill()
        server._proc.wait()


def test_exit_codes_read_as_signals_or_codes():
    assert "(SIGILL)" in crashed(-signal.SIGILL)
    assert crashed(3) == "the local model server exited with code 3 on its first completion"
