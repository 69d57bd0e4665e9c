"""Errors the CLI turns into one readable line and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class HarnessError(Exception):
    """A problem the user can fix (bad config, missing file, bad eval set); exit code 2."""


class ConfigError(HarnessError):
    pass


class EvalSetError(HarnessError):
    pass


def not_utf8_message(path: Path) -> str:
    """Where a user's file stops being UTF-8 (file:line and the byte), and what to do: the decoder's own
    message names neither the file nor the fix."""
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return (f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); the harness reads UTF-8 files: "
                f"save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 {path.name} > new-{path.name})")
    except OSError:
        pass
    return f"{path}: not UTF-8 text; the harness reads UTF-8 files: save it as UTF-8"


@contextmanager
def utf8_only(path: Path, error_cls: type[Exception] = HarnessError) -> Iterator[None]:
    """Reading `path` inside this block: a byte that is not UTF-8 becomes one line naming the file."""
    try:
        yield
    except UnicodeDecodeError:
        raise error_cls(not_utf8_message(path)) from None


def read_utf8(path: Path, error_cls: type[Exception] = HarnessError) -> str:
    """A user's file as text (config, eval set, price table, rubric): UTF-8, else one line naming the file."""
    with utf8_only(path, error_cls):
        return path.read_text("utf-8")
