"""The harness used from a team's own repository: installed from a wheel, run and gated outside this clone.

docs/ci-regression-gate.md tells teams to install the package (a tag or a wheel) into their own project, with
their own configs/, evalsets/ and .gitignore. This test builds the wheel from a copy of the sources, unpacks it
into a folder of its own (what `pip install` does, without touching the test venv), and runs the CI recipe in an
empty folder that is not this repository: validate, an accepted run, a candidate run, the gate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from tests.conftest import REPO, TASK, TEST_ITEMS, TRAIN_ITEMS, write_jsonl


def _build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(REPO / "harness", src / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    dist = tmp_path / "dist"
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    wheels = list(dist.glob("llm_eval_harness-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    return wheels[0]


def _team_repo(tmp_path: Path, base_url: str) -> Path:
    repo = tmp_path / "team-repo"
    ev = repo / "evalsets" / "cards"
    ev.mkdir(parents=True)
    (ev / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    write_jsonl(ev / "test.jsonl", [{"id": i, "input": {"text": t}, "expected": {"intent": lab, "urgent": u}}
                                    for i, t, lab, u, _ in TEST_ITEMS])
    write_jsonl(ev / "train.jsonl", [{"id": i, "input": {"text": t}, "expected": {"intent": lab, "urgent": u}}
                                     for i, t, lab, u in TRAIN_ITEMS])
    (repo / "configs").mkdir()
    cfg = {"name": "prod", "evalset": "../evalsets/cards",
           "models": {"prod": {"provider": "openai-compatible", "base_url": base_url, "model": "gpt-4o-mini",
                               "structured_output": "json_schema"}},
           "variants": [{"name": "baseline", "kind": "baseline", "model": "prod"},
                        {"name": "few-shot", "kind": "few_shot", "model": "prod", "shots": 2}],
           "run": {"temperature": 0, "max_tokens": 64}}
    (repo / "configs" / "prod.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (repo / ".gitignore").write_text("results/*\n!results/accepted/\n")
    return repo


def test_wheel_runs_the_ci_recipe_in_a_repository_of_its_own(tmp_path, fake_server):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "harness/models/prices.yaml" in names  # the price table travels with the package
        zf.extractall(tmp_path / "site")
    repo = _team_repo(tmp_path, fake_server.base_url)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "HARNESS_CACHE_DIR": str(tmp_path / "cache")}

    def harness(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness", *args], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=300)

    found = subprocess.run([sys.executable, "-c", "import harness; print(harness.__file__)"], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=60)
    assert Path(found.stdout.strip()).is_relative_to(tmp_path / "site"), found.stdout + found.stderr

    checked = harness("validate", "configs/prod.yaml", "--today", "2026-07-01")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for out in ("results/accepted", "results/candidate"):
        ran = harness("run", "configs/prod.yaml", "--out", out, "--no-progress", "--today", "2026-07-01")
        assert ran.returncode == 0, ran.stderr
    again = harness("run", "configs/prod.yaml", "--out", "results/candidate", "--force", "--no-progress",
                    "--today", "2026-07-01")
    assert again.returncode == 0, again.stderr
    gate = harness("compare", "results/accepted", "results/candidate", "--json")
    assert gate.returncode == 0, gate.stdout + gate.stderr
    result = json.loads(gate.stdout)
    assert result["exit_code"] == 0
    assert {c["candidate_variant"] for c in result["comparisons"]} == {"baseline", "few-shot"}
    assert (repo / "results" / "accepted" / "report.html").exists()
