"""`harness plan` on a config and a pilot run made in the test against the loopback fake server: the printed n,
the cost against a hand computation, the eval set's shortfall, and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.analysis.power import mcnemar_n, paired_n
from harness.cli import main
from tests.conftest import TEST_DAY, TEST_ITEMS, make_config
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text

CARELESS = "Answer carelessly."
VARIANTS = [{"name": "baseline", "kind": "baseline", "model": "small"},
            {"name": "careless", "kind": "baseline", "model": "small", "instructions": CARELESS}]
PRICE = {"input": 2.0, "output": 8.0}  # USD per 1M tokens, set on the model so the hand computation is fixed


def _reply(body: dict[str, Any]) -> Reply:
    """Right on every item, except that the careless variant gets t1 and t2 wrong: 2 of 4 items discordant."""
    text, system = last_user_text(body), str(body["messages"][0]["content"])
    for item_id, msg, lab, urgent, _ in TEST_ITEMS:
        if msg in text:
            if CARELESS in system and item_id in ("t1", "t2"):
                lab = "refund" if lab != "refund" else "lost_card"
            return Reply(text=json.dumps({"intent": lab, "urgent": urgent}), prompt_tokens=100, completion_tokens=10)
    return Reply(text="{}", prompt_tokens=100, completion_tokens=10)


@pytest.fixture
def server():
    s = FakeOpenAIServer(_reply, models=["gpt-4o-mini"]).start()
    yield s
    s.stop()


def _config(tmp_path: Path, evalset_dir: Path, base_url: str, **run: Any) -> Path:
    path = make_config(tmp_path, evalset_dir, base_url, VARIANTS)
    data = yaml.safe_load(path.read_text())
    data["models"]["small"]["price"] = PRICE
    data["run"].update(run)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def pilot(tmp_path: Path, evalset_dir: Path, server: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]) -> Path:
    cfg = _config(tmp_path, evalset_dir, server.base_url)
    out = tmp_path / "pilot"
    code, _, err = _cli(capsys, "run", cfg, "--out", out, "--no-progress", "--today", TEST_DAY)
    assert code == 0, err
    return out


def test_plan_from_a_pilot_prints_n_cost_and_the_shortfall(tmp_path, evalset_dir, server, pilot, capsys):
    cfg = _config(tmp_path, evalset_dir, server.base_url)
    code, out, err = _cli(capsys, "plan", cfg, "--detect", "5pp", "--from", pilot, "--today", TEST_DAY)
    assert code == 0, err
    n = mcnemar_n(0.05, 0.5)  # the pilot: 2 of 4 items discordant, every value 0/1
    row = next(line for line in out.splitlines() if line.startswith("careless vs baseline "))
    assert row.split()[-1] == f"{n:,}" and "McNemar (exact)" in row and "discordance 50.0%" in row
    assert "50.0% of 4 items discordant" in out
    # the pilot's 100 prompt + 10 completion tokens per call, at $2 / $8 per 1M, two variants of n items
    per_call = (100 * 2.0 + 10 * 8.0) / 1_000_000
    total = re.search(r"^total +\$([\d,.]+)", out, re.M)
    assert total is not None and float(total.group(1).replace(",", "")) == pytest.approx(2 * n * per_call, abs=5e-5)
    assert "output tokens from pilot" in out
    assert f"the eval set has only 4 test items; careless vs baseline needs {n:,} items" in out
    # the same plan as JSON, and the Batch API halves the price of the same calls
    batch = _config(tmp_path, evalset_dir, server.base_url, mode="batch")
    code, out, _ = _cli(capsys, "plan", batch, "--detect", "5pp", "--from", pilot, "--json", "--today", TEST_DAY)
    plan = json.loads(out)
    assert code == 0 and plan["items_needed"] == n and not plan["enough_items"]
    assert plan["run"]["cost_usd"] == pytest.approx(n * per_call)
    assert plan["run"]["seconds"] is None and "batch" in plan["run"]["time_basis"]


def test_plan_without_a_pilot_states_its_assumption_and_the_rate_limit_time(tmp_path, evalset_dir, capsys):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", VARIANTS)
    data = yaml.safe_load(cfg.read_text())
    data["models"]["small"].update(price=PRICE, requests_per_minute=60)
    data["run"]["repeats"] = 3  # per-item means over repeats: the sign-flip case
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    code, out, err = _cli(capsys, "plan", cfg, "--detect", "10pp", "--power", "0.9", "--json", "--today", TEST_DAY)
    assert code == 0, err
    plan = json.loads(out)
    (c,) = plan["comparisons"]
    assert c["test"] == "sign-flip" and "assumed" in c["basis"]
    assert c["items_needed"] == paired_n(0.10, (0.40 - 0.01) ** 0.5, 0.9, 0.05)  # discordance 2 x 10 + 20 pp
    calls = c["items_needed"] * 3 * 2
    assert plan["run"]["calls"] == calls
    assert plan["run"]["seconds"] == pytest.approx(calls / (60 * 0.95) * 60)  # the limiter paces at 95%
    assert plan["calls"][0]["completion_basis"] == "max_tokens 64 (upper bound)"
    code, out, _ = _cli(capsys, "plan", cfg, "--detect", "10pp", "--today", TEST_DAY)
    assert "x 3 repeats" in out and "repeats are not items" in out


def _one_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_plan_errors_are_one_line(tmp_path, evalset_dir, server, pilot, capsys):
    cfg = _config(tmp_path, evalset_dir, server.base_url)
    code, _, err = _cli(capsys, "plan", cfg, "--detect", "0.05")
    assert code == 2 and "give the difference to detect in percentage points" in _one_error(err)
    code, _, err = _cli(capsys, "plan", cfg, "--detect", "5pp", "--variants", "baseline,nope")
    assert code == 2 and "no variant 'nope' in the config" in _one_error(err)
    # a pilot without one of the variants to compare
    only = tmp_path / "only-baseline"
    code, _, err = _cli(capsys, "run", cfg, "--out", only, "--variants", "baseline", "--no-progress",
                        "--today", TEST_DAY)
    assert code == 0, err
    code, _, err = _cli(capsys, "plan", cfg, "--detect", "5pp", "--from", only)
    assert code == 2 and "the pilot has no records of variant 'careless'" in _one_error(err)
    code, _, err = _cli(capsys, "plan", cfg, "--detect", "5pp", "--power", "80")
    assert code == 2 and "--power 80.0: give a probability" in _one_error(err)


def test_report_shows_a_saved_plan_beside_the_items_the_run_asked(tmp_path, evalset_dir, server, pilot, capsys):
    report = pilot / "report.md"
    assert "## Plan" not in report.read_text()  # no plan.json: no section
    cfg = _config(tmp_path, evalset_dir, server.base_url)
    code, _, err = _cli(capsys, "plan", cfg, "--detect", "5pp", "--from", pilot, "--save", pilot / "plan.json",
                        "--today", TEST_DAY)
    assert code == 0, err
    code, _, err = _cli(capsys, "report", pilot)
    assert code == 0, err
    text = report.read_text()
    n = mcnemar_n(0.05, 0.5)
    assert "## Plan" in text and f"- careless vs baseline: {n:,} items (McNemar (exact);" in text
    assert f"this run asked 4 items: fewer than the {n:,} the plan needs" in text
    page = (pilot / "report.html").read_text()  # the same section in the HTML report
    assert '<h2 id="plan">Plan</h2>' in page and f"<li>careless vs baseline: {n:,} items (McNemar (exact);" in page
    assert f"<li>this run asked 4 items: fewer than the {n:,} the plan needs" in page


def test_a_pilot_on_another_version_of_the_eval_set_is_warned_about(tmp_path, evalset_dir, server, pilot, capsys):
    with (evalset_dir / "test.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "t5", "input": {"text": "refund please"},
                            "expected": {"intent": "refund", "urgent": False}}) + "\n")
    cfg = _config(tmp_path, evalset_dir, server.base_url)
    code, out, err = _cli(capsys, "plan", cfg, "--detect", "5pp", "--from", pilot, "--today", TEST_DAY)
    assert code == 0, err
    assert "warning: --from" in out and "the pilot ran on another version of the eval set" in out
    assert "the eval set has only 5 test items" in out
