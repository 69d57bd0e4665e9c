"""task.yaml's `scoring:` is read by the data layer as written and bound by scoring (harness.scoring.task_yaml):
reading an eval set imports no scorer, and a bad entry is still an eval-set error naming task.yaml's line, at
`harness validate` and `harness run`, before anything else happens."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from harness.cli import main
from harness.data.evalset import load_evalset
from harness.errors import EvalSetError
from harness.scoring.suite import TaskScoring
from harness.scoring.task_yaml import scorers_of
from tests.conftest import REPO, TASK, make_config


def bad_scoring(evalset_dir):
    task = {**TASK, "scoring": [{"name": "amount", "scorer": "number", "field": "intent", "tolerance": -1}]}
    (evalset_dir / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return evalset_dir


def test_reading_an_eval_set_imports_no_scorer(evalset_dir):
    code = (f"import sys; from harness.data.evalset import load_evalset; ev = load_evalset({str(evalset_dir)!r}); "
            "print(sorted(m for m in sys.modules if m.startswith('harness.scoring')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_a_bad_scorer_is_an_eval_set_error_when_bound(evalset_dir):
    ev = load_evalset(bad_scoring(evalset_dir))  # the data layer keeps the entries as written
    assert ev.scoring == [{"name": "amount", "scorer": "number", "field": "intent", "tolerance": -1}]
    with pytest.raises(EvalSetError, match=r"task.yaml:\d+: scoring\[0\].tolerance: .*greater than or equal to 0"):
        TaskScoring.for_evalset(ev)


def test_bound_once_per_loaded_eval_set(evalset_dir):
    task = {**TASK, "scoring": [{"name": "who", "scorer": "exact", "field": "intent"}]}
    (evalset_dir / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    ev = load_evalset(evalset_dir)
    assert [s.name for s in scorers_of(ev)] == ["who"] and scorers_of(ev) is scorers_of(ev)
    assert TaskScoring.for_evalset(ev).scorers == scorers_of(ev)


def test_validate_and_run_stop_on_it_before_anything_else(tmp_path, evalset_dir, fake_server, capsys):
    cfg = make_config(tmp_path, bad_scoring(evalset_dir), fake_server.base_url)
    assert main(["validate", str(cfg)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert [x for x in err.splitlines() if x.startswith("error: ")] == [
        f"error: {evalset_dir / 'task.yaml'}:{_line(evalset_dir)}: scoring[0].tolerance: Input should be greater "
        "than or equal to 0"]
    assert main(["run", str(cfg), "--out", str(tmp_path / "run")]) == 2
    assert "scoring[0].tolerance" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and fake_server.requests == []


def _line(evalset_dir) -> int:
    lines = (evalset_dir / "task.yaml").read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if "tolerance" in text)
