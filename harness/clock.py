"""What day it is, for the code that compares dates (today: how old a price-table row is).

Every such comparison asks `today(given)`: the day its caller passed down (`--today YYYY-MM-DD` on the
command line, `RunOptions.today` / `harness.run(today=...)` in Python), else the system's date. So a run can be
reproduced as of a given day, and the test suite fixes the day once (tests/conftest.py) instead of depending on
the calendar. Timestamps written as records of fact (a manifest's started_at, a run folder's name, a training
record's created_at) are not comparisons and read the clock directly.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import re


def system_today() -> dt.date:
    """The system's date (the one place that reads it for a comparison)."""
    return dt.date.today()


def today(given: dt.date | None = None) -> dt.date:
    """`given` when the caller has one, else the system's date."""
    return given if given is not None else system_today()


def parse_day(text: str) -> dt.date:
    """`2026-12-05` -> that day; anything else raises ValueError saying what is expected."""
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        with contextlib.suppress(ValueError):
            return dt.date.fromisoformat(value)
    raise ValueError(f"expected a day as YYYY-MM-DD (e.g. 2026-12-05), got {text!r}")


def add_today_option(parser: argparse.ArgumentParser) -> None:
    """`--today YYYY-MM-DD` on a command that dates prices (run, validate, prices); None when not given."""
    def day(text: str) -> dt.date:
        try:
            return parse_day(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument("--today", type=day, metavar="YYYY-MM-DD",
                        help="date price-table rows against this day instead of the system's date (a table price "
                        "read more than 180 days before it is flagged)")
