"""`harness finetune export`: the train split through the fine-tuned variant's renderer, OpenAI's rules, the
token and cost estimate, and the guarantee that held-out test items never reach a training file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.api import run
from harness.cli import main
from harness.config import load_config
from harness.data.evalset import load_evalset
from harness.errors import HarnessError
from harness.finetune.data import assert_no_test_items
from harness.finetune.estimates import CostEstimate, TokenEstimator, calibrate_from_run, training_price
from harness.finetune.export import export
from harness.finetune.openai_format import context_limit, raise_if_invalid, validate_training_file
from harness.prompts.variants import render_training_example
from harness.runner.runner import RunOptions
from tests.conftest import TASK, TEST_ITEMS, write_jsonl

INTENTS = ["card_arrival", "lost_card", "refund"]
# 14 train items; ft-dup repeats test item t2's text with other case/spacing: it must be left out.
FT_TRAIN = [(f"ft{i:02d}", f"training message number {i} about my card", INTENTS[i % 3], i % 2 == 0)
            for i in range(13)] + [("ft-dup", "Someone  STOLE my card", "lost_card", True)]


@pytest.fixture
def ft_evalset(tmp_path: Path) -> Path:
    d = tmp_path / "evalsets" / "ft"
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    write_jsonl(d / "test.jsonl", [{"id": i, "input": {"text": t}, "expected": {"intent": lab, "urgent": u}}
                                   for i, t, lab, u, _ in TEST_ITEMS])
    write_jsonl(d / "train.jsonl", [{"id": i, "input": {"text": t}, "expected": {"intent": lab, "urgent": u}}
                                    for i, t, lab, u in FT_TRAIN])
    return d


def ft_config(tmp_path: Path, evalset: Path, *, provider: str = "openai", finetune_settings: dict | None = None,
              base_url: str | None = None) -> Path:
    model = {"provider": provider}
    if provider == "local":
        model["lora"] = str(tmp_path / "adapter.gguf")
    else:
        model.update({"model_file": str(tmp_path / "ft-model-id.txt"), "api_key_env": "FT_TEST_KEY"})
        if base_url:
            model["base_url"] = base_url
    cfg = {
        "name": "ftcfg",
        "evalset": str(evalset),
        "models": {"base": {"provider": "openai-compatible", "base_url": base_url or "http://127.0.0.1:9/v1",
                            "model": "gpt-4o-mini"},
                   "tuned": model},
        "variants": [{"name": "baseline", "kind": "baseline", "model": "base"},
                     {"name": "fine-tuned", "kind": "fine_tuned", "model": "tuned"}],
        "finetune": {"output_dir": str(tmp_path / "ft-out"), "base_model": "gpt-4o-mini-2024-07-18", "epochs": 3,
                     **(finetune_settings or {})},
    }
    path = tmp_path / "ft.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_export_renders_with_the_variants_renderer_and_leaves_test_items_out(tmp_path, ft_evalset, capsys):
    cfg_path = ft_config(tmp_path, ft_evalset)
    out = tmp_path / "data" / "train.jsonl"
    assert main(["finetune", "export", str(cfg_path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    ev = load_evalset(ft_evalset)
    rows = read_lines(out)
    kept = [it for it in ev.train if it.id != "ft-dup"]
    # exactly the fine-tuned variant's prompt (OpenAI model: system role) plus the expected answer
    assert [r["messages"] for r in rows] == [render_training_example(ev, it, system_role=True) for it in kept]
    assert rows[0]["messages"][0]["role"] == "system" and rows[0]["messages"][-1]["role"] == "assistant"
    raw = out.read_text("utf-8").lower()
    for _, test_text, *_ in TEST_ITEMS:
        assert test_text.lower() not in raw
    assert "none of the 4 test items is in the file" in text
    assert "ft-dup~t2" in text  # the near-duplicate of a test item is named and left out
    assert "13 examples" in text
    assert "warning" in text and "only 13 examples" in text  # under 50
    assert "chars/4 + 4 per message" in text
    assert "$3.00/1M" in text and "x 3 epochs" in text


def test_local_variant_folds_instructions_into_the_user_turn(tmp_path, ft_evalset):
    cfg = load_config(ft_config(tmp_path, ft_evalset, provider="local"))
    ev = load_evalset(ft_evalset)
    res = export(cfg, ev)
    first = read_lines(res.train_path)[0]["messages"]
    assert [m["role"] for m in first] == ["user", "assistant"]
    assert first[0]["content"].startswith(TASK["instructions"])
    assert res.train_path == tmp_path / "ft-out" / "ftcfg-train.jsonl"


def test_validation_share_writes_a_disjoint_validation_file(tmp_path, ft_evalset):
    cfg = load_config(ft_config(tmp_path, ft_evalset, finetune_settings={"validation_share": 0.25, "seed": 3}))
    ev = load_evalset(ft_evalset)
    res = export(cfg, ev)
    assert res.validation_path is not None and res.validation_report is not None
    assert len(res.split.validation) == 3 and len(res.split.train) == 10
    assert not {i.id for i in res.split.train} & {i.id for i in res.split.validation}
    assert res.validation_report.examples == 3 and res.train_report.ok
    again = export(cfg, ev)  # same seed, same split
    assert [i.id for i in again.split.validation] == [i.id for i in res.split.validation]


def test_too_few_examples_is_an_error(tmp_path, ft_evalset, capsys):
    cfg_path = ft_config(tmp_path, ft_evalset, finetune_settings={"max_train_items": 9})
    assert main(["finetune", "export", str(cfg_path)]) == 2
    err = capsys.readouterr().err
    assert "9 training examples; OpenAI needs at least 10" in err


def test_config_without_fine_tuned_variant_says_what_to_add(tmp_path, ft_evalset, capsys):
    cfg_path = ft_config(tmp_path, ft_evalset)
    data = yaml.safe_load(cfg_path.read_text())
    data["variants"] = data["variants"][:1]
    cfg_path.write_text(yaml.safe_dump(data))
    assert main(["finetune", "export", str(cfg_path)]) == 2
    assert "no fine_tuned variant" in capsys.readouterr().err


def test_validator_reports_each_problem_with_its_line(tmp_path):
    good = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                         {"role": "assistant", "content": "a"}]}
    lines = [json.dumps(good)] * 10 + [
        json.dumps({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "a"}]}),  # 11
        json.dumps({"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "a"}]}),  # 12
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),  # 13
        "{not json",  # 14
        json.dumps({"prompt": "x", "completion": "y"}),  # 15
        "",  # 16
        json.dumps({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}]}),  # 17
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = validate_training_file(path, TokenEstimator())
    errors = "\n".join(report.errors)
    assert f"{path}:11: messages[0].role is 'robot'" in errors
    assert f"{path}:12: messages[0].content is empty" in errors
    assert f"{path}:13: no assistant message" in errors
    assert f"{path}:14: not valid JSON" in errors
    assert f'{path}:15: each line must be {{"messages": [...]}}' in errors
    assert f"{path}:16: empty line" in errors
    assert f"{path}:17: messages[0].content must be a string" in errors
    assert not any(f"{path}:{n}:" in errors for n in range(1, 11))
    with pytest.raises(HarnessError, match="breaks OpenAI's fine-tuning rules"):
        raise_if_invalid(report)


def test_per_example_token_limit(tmp_path):
    path = tmp_path / "long.jsonl"
    row = {"messages": [{"role": "user", "content": "x" * 400}, {"role": "assistant", "content": "y"}]}
    path.write_text((json.dumps(row) + "\n") * 10)
    report = validate_training_file(path, TokenEstimator(), limit=100)
    assert len(report.errors) == 10 and "over the 100-token limit per example" in report.errors[0]
    assert report.errors[0].startswith(f"{path}:1:")
    assert context_limit("gpt-4o-mini-2024-07-18") == 65_536


def test_chars_over_four_estimate():
    est = TokenEstimator()
    msgs = [{"role": "user", "content": "abcdefgh"}, {"role": "assistant", "content": "abc"}]
    assert est.count(msgs) == (2 + 4) + (1 + 4)


def test_calibration_from_a_run(tmp_path, ft_evalset, fake_server):
    cfg_path = ft_config(tmp_path, ft_evalset, base_url=fake_server.base_url)
    res = run(cfg_path, RunOptions(results_dir=tmp_path / "results", progress=False, variants=["baseline"]))
    est = calibrate_from_run(res.run_dir)
    # the fake server reports 100 prompt tokens for every request
    from harness.rundir.folder import read_records

    records = read_records(res.run_dir / "records.jsonl")
    chars = sum(len(m["content"]) for r in records for m in r.request["messages"])
    assert est.tokens_per_char == pytest.approx(100 * len(records) / chars)
    assert "calibrated from" in est.method and "baseline" in est.method
    msgs = [{"role": "user", "content": "x" * 1000}]
    assert est.count(msgs) == pytest.approx(1000 * est.tokens_per_char, abs=1)


def test_cost_estimate_and_unknown_price(tmp_path):
    price, _ = training_price("gpt-4o-mini-2024-07-18", None)
    assert price == 3.00
    cost = CostEstimate(tokens=200_000, epochs=3, price_per_1m=price, source="table")
    assert cost.usd == pytest.approx(1.80)
    price, source = training_price("my-own-base", None)
    assert price is None
    assert "training price unknown" in CostEstimate(10, 1, None, source).describe()


def test_guard_catches_a_test_input_in_a_training_file(tmp_path, ft_evalset):
    ev = load_evalset(ft_evalset)
    path = tmp_path / "leaky.jsonl"
    row = {"messages": [{"role": "user", "content": "Message: I want my money back for the order"},
                        {"role": "assistant", "content": "{}"}]}
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(HarnessError, match=r"leaky.jsonl:1: contains the input of held-out test item 't3'"):
        assert_no_test_items(ev, [], path)
    with pytest.raises(HarnessError, match="held-out test items in the training data: t1"):
        assert_no_test_items(ev, ["t1"], path)


def test_guard_ignores_unicode_form_case_and_punctuation(tmp_path, ft_evalset):
    """The guard uses the package's one normaliser (harness.data.text), the same as the leakage check: a test
    input written with full-width letters, other case and extra punctuation is still that test input."""
    ev = load_evalset(ft_evalset)
    path = tmp_path / "disguised.jsonl"
    row = {"messages": [{"role": "user", "content": "Message: ＳＯＭＥＯＮＥ -- stole... my CARD!"},
                        {"role": "assistant", "content": "{}"}]}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(HarnessError, match=r"disguised.jsonl:1: contains the input of held-out test item 't2'"):
        assert_no_test_items(ev, [], path)
