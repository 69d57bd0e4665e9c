"""tools/golden.py: two renders of the same run folders with the same code are identical, and diff names what
differs (issue 19, point 6 is checked with it)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from harness.api import run
from harness.runner.runner import RunOptions
from tests.conftest import REPO, make_config

spec = importlib.util.spec_from_file_location("golden", REPO / "tools" / "golden.py")
assert spec is not None and spec.loader is not None
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)


def fake_render(root: Path, report: str = "| a | 1 |\n") -> Path:
    """A render folder as `render` leaves it: one run's four outputs, a compare output, a console output."""
    (root / "run1").mkdir(parents=True)
    (root / "run1" / "manifest.json").write_text("{}")
    for name in golden.OUTPUTS:
        (root / "run1" / name).write_text(report if name == "report.md" else f"{name}\n")
    for sub in (golden.COMPARE, golden.CONSOLE):
        (root / sub).mkdir()
    (root / golden.COMPARE / "pair.txt").write_text("result: ok\n# exit code: 0\n")
    (root / golden.CONSOLE / "report-run1.txt").write_text("wrote run1/summary.csv\n")
    (root / "_render.json").write_text(json.dumps({"harness": "x", "git": "y", "normalisations": {}}))
    return root


def test_diff_exits_1_naming_the_file_and_first_differing_line(tmp_path, capsys):
    a = fake_render(tmp_path / "a", "| a | 1 |\n| b | 2 |\n")
    b = fake_render(tmp_path / "b", "| a | 1 |\n| b | 2.0 |\n")
    assert golden.main(["diff", str(a), str(a)]) == 0
    assert "result: identical" in capsys.readouterr().out
    assert golden.main(["diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "differs: run1/report.md" in out and "line 2, column 8:" in out
    assert "A: | b | 2 |" in out and "B: | b | 2.0 |" in out and "result: DIFFERENT" in out


def test_diff_counts_missing_files_but_not_console_output(tmp_path, capsys):
    a, b = fake_render(tmp_path / "a"), fake_render(tmp_path / "b")
    (b / golden.CONSOLE / "report-run1.txt").write_text("wrote somewhere else\n")
    assert golden.main(["diff", str(a), str(b)]) == 0  # the console of `harness report` is shown, not gating
    assert "differs: _console/report-run1.txt" in capsys.readouterr().out
    (b / "run1" / "report.html").unlink()
    assert golden.main(["diff", str(a), str(b)]) == 1
    assert "only in A: run1/report.html" in capsys.readouterr().out


def test_normalise_replaces_the_render_folder_path(tmp_path):
    out = fake_render(tmp_path / "r")
    (out / "run1" / "summary.md").write_text(f"see {out}/run1/report.md\n")
    assert golden.normalise(out) == {f"render folder path -> {golden.RENDER_DIR_TOKEN}": 1}
    assert (out / "run1" / "summary.md").read_text() == f"see {golden.RENDER_DIR_TOKEN}/run1/report.md\n"


def test_two_renders_of_a_run_are_identical(tmp_path, evalset_dir, fake_server, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the harness that `python -m harness` runs is this checkout
    runs = tmp_path / "runs"
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    run(cfg, RunOptions(out=runs / "one", progress=False))
    shutil.copytree(runs / "one", runs / "two")
    (runs / "pairs.json").write_text(json.dumps([{"name": "same", "accepted": "one", "candidate": "two"}]))
    for out in ("r1", "r2"):
        assert golden.main(["render", str(runs), str(tmp_path / out)]) == 0
    printed = capsys.readouterr().out
    assert "normalisations applied: none" in printed and "pinned for every harness call: PYTHONHASHSEED=0" in printed
    r1 = tmp_path / "r1"
    for name in golden.OUTPUTS:  # rebuilt by `harness report`: the same bytes the run itself wrote
        assert (r1 / "one" / name).read_bytes() == (runs / "one" / name).read_bytes()
    text = (r1 / "compare" / "same.txt").read_text()
    assert text.startswith("accepted  one (eval set ") and text.endswith("# exit code: 0\n")
    assert json.loads((r1 / "compare" / "same.json").read_text().split("\n# stderr:")[0])["accepted_run"] == "one"
    assert golden.main(["diff", str(r1), str(tmp_path / "r2")]) == 0
    (tmp_path / "r2" / "two" / "summary.csv").write_text("changed\n")
    assert golden.main(["diff", str(r1), str(tmp_path / "r2")]) == 1


def test_render_refuses_a_folder_without_runs(tmp_path):
    with pytest.raises(SystemExit, match="no run folders"):
        golden.main(["render", str(tmp_path), str(tmp_path / "out")])
