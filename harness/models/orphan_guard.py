"""Keeping the embedded server's child process from outliving the harness.

Four layers keep it from becoming an orphan: LocalServer.stop() via `with`/`finally`; an `atexit` hook; on
Linux `PR_SET_PDEATHSIG` (the kernel sends SIGTERM when the parent dies, even by SIGKILL); and a watchdog
thread in the child that exits when its stdin pipe from the parent closes (covers non-Linux systems and
parents that started the server from a short-lived thread). The first two live in LocalServer; this module
holds the child-side ones: the command the child runs and the Popen settings it is spawned with.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The child removes this folder (its config, its temp log) if it finds itself orphaned.
TMPDIR_ENV = "HARNESS_LOCAL_TMPDIR"

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


def server_command(config_path: Path) -> list[str]:
    """llama_cpp.server behind the stdin watchdog; spawn it with stdin=PIPE and keep the pipe open."""
    return [sys.executable, "-c", _BOOTSTRAP, "--config_file", str(config_path)]


def popen_kwargs() -> dict[str, Any]:
    """Popen settings for the server child; call it in the thread that spawns (PDEATHSIG is per thread)."""
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":  # pragma: no cover
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        # Own session: Ctrl-C in the terminal reaches only us, and we stop the server in order.
        kwargs["start_new_session"] = True
        if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
            kwargs["preexec_fn"] = _pdeathsig_preexec()
    return kwargs


def _pdeathsig_preexec() -> Callable[[], None]:
    """A preexec_fn that makes the kernel SIGTERM the server when its parent dies (Linux only).

    The kernel ties this to the spawning *thread*, so popen_kwargs() uses it only from the main thread (the
    stdin watchdog covers the rest). libc is loaded here, before fork: dlopen in a forked child of a threaded
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
