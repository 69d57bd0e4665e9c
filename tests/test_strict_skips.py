"""`make test` tells the truth: skips are listed by reason, and HARNESS_STRICT_SKIPS=1 (.ci/run) fails them.

Each case runs pytest in a subprocess on a tiny test folder, with this repository's tests/conftest.py loaded
as a plugin, exactly as the suite loads it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

TINY = textwrap.dedent('''
    import pytest

    def test_runs():
        pass

    def test_optional_part_missing():
        pytest.skip("frobnicator not installed (pip install frobnicator)")

    @pytest.mark.skipif(True, reason="frobnicator not installed (pip install frobnicator)")
    def test_marked_skip():
        pass

    @pytest.mark.skipif(True, reason="no widget on this machine")
    def test_widget():
        pass

    @pytest.mark.expected_skip("only meaningful on another platform")
    def test_other_platform():
        pytest.skip("not that platform")

    @pytest.mark.xfail(reason="known bug", strict=True)
    def test_known_bug():
        assert False
''')

MODULE_SKIP = "import pytest\n\npytest.importorskip('no_such_module_4242', reason='pip install no-such-module')\n\n" \
              "def test_never_collected():\n    pass\n"


def _pytest(tmp_path: Path, **env_vars: str) -> tuple[int, str, dict[str, int]]:
    tmp_path.mkdir()
    (tmp_path / "test_tiny.py").write_text(TINY)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    env = {k: v for k, v in os.environ.items()
           if k not in ("HARNESS_STRICT_SKIPS", "HARNESS_ALLOWED_SKIPS", "PYTEST_ADDOPTS")}
    env.update(env_vars, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-o", "addopts=",
         "--rootdir", str(tmp_path), "-rfE", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    last = [line for line in out.splitlines() if line.startswith("=") and " in " in line][-1]
    counts = {word.rstrip("s") if word != "xfailed" else word: int(n)
              for n, word in re.findall(r"(\d+) (\w+)", last) if not word.startswith("warning")}
    return proc.returncode, out, counts


def test_skips_are_listed_by_reason_and_fail_under_strict_mode(tmp_path: Path) -> None:
    # Default (a developer's `make test`): skips stay skips, but the summary lists every one with its reason.
    code, out, counts = _pytest(tmp_path / "plain")
    assert code == 0, out
    assert counts == {"passed": 1, "skipped": 5, "xfailed": 1}, out
    summary = out.split("skipped: 5 test(s) or module(s) did not run, by reason")[1]
    assert "frobnicator not installed (pip install frobnicator)  [2]" in summary
    assert "test_tiny.py::test_optional_part_missing" in summary and "test_tiny.py::test_marked_skip" in summary
    assert "no widget on this machine  [1]" in summary
    assert "pip install no-such-module  [1]" in summary and "test_module_skip.py" in summary
    assert "not that platform  [1]" in summary
    assert "under HARNESS_STRICT_SKIPS=1" in summary

    # Strict (.ci/run): every skip fails except one marked expected_skip; xfail is not a skip.
    code, out, counts = _pytest(tmp_path / "strict", HARNESS_STRICT_SKIPS="1")
    assert code == 1, out
    # the skip inside the test fails; the skipif marks fail at setup (pytest calls those errors)
    assert counts == {"passed": 1, "failed": 1, "error": 2, "skipped": 2, "xfailed": 1}, out
    assert "HARNESS_STRICT_SKIPS=1: this test is meant to run but skipped: no widget on this machine" in out
    assert re.search(r"FAILED .*test_optional_part_missing", out) and re.search(r"ERROR .*test_marked_skip", out)
    assert "test_module_skip.py  <- FAILS (strict)" in out
    assert "test_other_platform" in out and "test_other_platform  <- FAILS" not in out
    assert "4 skip(s) counted as failures" in out

    # A machine that cannot have a part names it: those skips are allowed, the others still fail.
    code, out, counts = _pytest(tmp_path / "allowed", HARNESS_STRICT_SKIPS="1",
                                HARNESS_ALLOWED_SKIPS="frobnicator, no-such-module")
    assert code == 1, out
    assert counts == {"passed": 1, "error": 1, "skipped": 4, "xfailed": 1}, out
    assert "1 skip(s) counted as failures" in out

    code, out, counts = _pytest(tmp_path / "all-allowed", HARNESS_STRICT_SKIPS="1",
                                HARNESS_ALLOWED_SKIPS="frobnicator,no-such-module,widget")
    assert code == 0, out
    assert "HARNESS_STRICT_SKIPS=1: every skip above is allowed" in out
