"""Moves the wall clock of a Python process tree ahead by CLOCK_AHEAD_DAYS, to check that nothing depends on today.

Usage (the whole suite, two years ahead; subprocesses inherit it through PYTHONPATH):

    CLOCK_AHEAD_DAYS=730 PYTHONPATH=tools/clock_ahead .venv/bin/python -m pytest

Why not libfaketime (`faketime -f +730d`): Debian's libfaketime 0.9.10 either shifts the monotonic clock too, and
then every timed wait of Python 3.11 (queue.get(timeout), Event.wait, lock timeouts) waits for a deadline two
years away, or, with FAKETIME_DONT_FAKE_MONOTONIC=1, makes time.sleep fail with EINVAL. This shifts only what
code reads as the date and time of day (time.time, time.time_ns, time.localtime/gmtime/strftime, date.today);
the monotonic clock, and so every wait and timeout, stays real. `datetime.datetime` is left as it is (a subclass
in its place crashes pandas' C extensions); the harness dates nothing from datetime.now: it stamps records and
manifests with it, and every date comparison asks harness.clock, which reads date.today. It is loaded at interpreter start-up, before any
module binds these names.
"""

from __future__ import annotations

import datetime as _dt
import os
import time as _time

_DAYS = float(os.environ.get("CLOCK_AHEAD_DAYS") or 0)

if _DAYS:
    _SHIFT_S = _DAYS * 86_400
    _real_time, _real_time_ns = _time.time, _time.time_ns

    def _time_ahead() -> float:
        return _real_time() + _SHIFT_S

    def _time_ns_ahead() -> int:
        return _real_time_ns() + int(_SHIFT_S * 1_000_000_000)

    _real_localtime, _real_gmtime, _real_strftime = _time.localtime, _time.gmtime, _time.strftime
    _time.time = _time_ahead
    _time.time_ns = _time_ns_ahead
    _time.localtime = lambda secs=None: _real_localtime(_time_ahead() if secs is None else secs)
    _time.gmtime = lambda secs=None: _real_gmtime(_time_ahead() if secs is None else secs)
    _time.strftime = lambda fmt, t=None: _real_strftime(fmt, _time.localtime() if t is None else t)

    class _Date(_dt.date):
        @classmethod
        def today(cls):  # type: ignore[override]
            return cls.fromtimestamp(_time_ahead())

    _dt.date = _Date  # type: ignore[misc]
