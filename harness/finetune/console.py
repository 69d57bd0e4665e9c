"""How the fine-tuning commands print: one line at a time through a callable, so tests can collect the lines.

The default flushes every line, since the commands run for minutes and their output is followed live.
"""

from __future__ import annotations

from collections.abc import Callable

Out = Callable[[str], None]


def print_line(msg: str) -> None:
    print(msg, flush=True)
