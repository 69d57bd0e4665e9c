"""Skips that cannot hide: every skip is listed, grouped by reason, at the end of the run; under
HARNESS_STRICT_SKIPS=1 (set by .ci/run) a skip is a failure, so `make test` cannot pass while a test it is
meant to run did not run (an optional part that failed to install, a data file that is missing).

A skip stays a skip in strict mode only when
- the test carries `@pytest.mark.expected_skip("why skipping is right")`, or
- its node id or reason contains one of the comma-separated strings in HARNESS_ALLOWED_SKIPS (for a machine
  that cannot have a part, e.g. HARNESS_ALLOWED_SKIPS=chromium where apt-get is not available).
xfail is not a skip and is left alone.

The hooks are imported by tests/conftest.py.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import pytest

STRICT_ENV = "HARNESS_STRICT_SKIPS"
ALLOW_ENV = "HARNESS_ALLOWED_SKIPS"

_collect_skips: list[pytest.CollectReport] = []  # module-level skips (importorskip), this session's


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip() not in ("", "0")


def _allowed_patterns() -> list[str]:
    return [p.strip() for p in os.environ.get(ALLOW_ENV, "").split(",") if p.strip()]


def skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _allowed(nodeid: str, reason: str) -> bool:
    return any(p in nodeid or p in reason for p in _allowed_patterns())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"expected_skip(reason): the test may skip even under {STRICT_ENV}=1; say why skipping is right")


def pytest_sessionstart(session: pytest.Session) -> None:
    _collect_skips.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if not (report.skipped and strict()) or hasattr(report, "wasxfail"):
        return report
    reason = skip_reason(report)
    if item.get_closest_marker("expected_skip") is None and not _allowed(report.nodeid, reason):
        report.outcome = "failed"
        report.longrepr = (f"{STRICT_ENV}=1: this test is meant to run but skipped: {reason}\n"
                           f"(install the missing part; mark the test expected_skip only if skipping is right)")
        report.strict_skip_reason = reason  # type: ignore[attr-defined]
    return report


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _collect_skips.append(report)


def _failing_collect_skips() -> list[pytest.CollectReport]:
    if not strict():
        return []
    return [r for r in _collect_skips if not _allowed(r.nodeid, skip_reason(r))]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A whole module skipped at import (pytest.importorskip) has no test report to turn into a failure.
    if _failing_collect_skips() and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    stats = terminalreporter.stats
    failing_collect = {r.nodeid for r in _failing_collect_skips()}
    entries: list[tuple[str, str, bool]] = []  # (reason, node id, counted as a failure)
    for r in stats.get("skipped", []):
        if not hasattr(r, "wasxfail"):
            entries.append((skip_reason(r), r.nodeid, r.nodeid in failing_collect))
    for key in ("failed", "error"):
        entries += [(r.strict_skip_reason, r.nodeid, True) for r in stats.get(key, [])
                    if hasattr(r, "strict_skip_reason")]
    if not entries:
        if strict():
            terminalreporter.write_line(f"{STRICT_ENV}=1: no test skipped")
        return
    by_reason: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for reason, nodeid, fails in entries:
        by_reason[reason].append((nodeid, fails))
    terminalreporter.write_sep("=", f"skipped: {len(entries)} test(s) or module(s) did not run, by reason")
    for reason, nodes in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        terminalreporter.write_line(f"{reason}  [{len(nodes)}]")
        for nodeid, fails in nodes:
            terminalreporter.write_line(f"    {nodeid}{'  <- FAILS (strict)' if fails else ''}")
    n_fail = sum(1 for _, _, fails in entries if fails)
    if not strict():
        terminalreporter.write_line(f"(under {STRICT_ENV}=1, as .ci/run sets, these skips fail the run)")
    elif n_fail:
        terminalreporter.write_line(
            f"{STRICT_ENV}=1: {n_fail} skip(s) counted as failures; a test may skip only with "
            f"@pytest.mark.expected_skip(reason) or a match in {ALLOW_ENV}", red=True, bold=True)
    else:
        terminalreporter.write_line(f"{STRICT_ENV}=1: every skip above is allowed")
