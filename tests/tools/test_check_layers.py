"""tools/check_layers.py: no import of the harness runs up the flow (issue 19, point 5), and the check itself
catches an upward import wherever it hides (inside a function, under TYPE_CHECKING) and a package in no layer."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

SCRIPT = REPO / "tools" / "check_layers.py"


def check(root: Path | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(SCRIPT), *([str(root)] if root else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO)


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "harness" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "harness"


def test_the_harness_imports_only_downward():
    proc = check()
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout == "" and "all downward" in proc.stderr


def test_upward_imports_are_found_wherever_they_are(tmp_path):
    root = tree(tmp_path, {
        "__init__.py": "__version__ = '0'\n",
        "numbers.py": "",
        "analysis/__init__.py": "",
        "analysis/stats.py": "import harness\nfrom harness.numbers import is_missing\n",
        "analysis/compare.py": """\
            from typing import TYPE_CHECKING
            from harness.analysis import stats
            if TYPE_CHECKING:
                from harness.report.format import pct
            def f():
                from harness.report import format
            """,
        "report/__init__.py": "",
        "report/format.py": "from harness.analysis.stats import x\n",
        "data/__init__.py": "",
        "data/evalset.py": "def g():\n    import harness.scoring.registry\n",
        "scoring/__init__.py": "",
        "scoring/registry.py": "",
    })
    proc = check(root)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "harness.analysis.compare (line 4, analysis) imports harness.report.format (report): up the flow",
        "harness.analysis.compare (line 6, analysis) imports harness.report.format (report): up the flow",
        "harness.data.evalset (line 2, data) imports harness.scoring.registry (prompts/scoring): up the flow",
    ]
    listed = check(root, "--list").stdout.splitlines()
    assert "6 harness.analysis.stats:2 -> 0 harness.numbers" in listed
    assert "7 harness.report.format:1 -> 6 harness.analysis.stats" in listed


def test_a_package_in_no_layer_is_a_problem(tmp_path):
    root = tree(tmp_path, {"__init__.py": "", "plugins/__init__.py": "", "plugins/x.py": "import json\n"})
    proc = check(root)
    assert proc.returncode == 1
    assert proc.stdout == "harness/plugins: in no layer; add it to LAYERS in tools/check_layers.py\n"
