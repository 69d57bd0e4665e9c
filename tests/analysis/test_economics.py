"""Cost per request / 1,000 / correct / month, self-hosted costing, training cost, break-even, the decision."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from harness.analysis.costs import busy_seconds, self_hosted_costs
from harness.analysis.economics import Payback, TrainingEstimate, break_even, estimate_training
from harness.analysis.stats import outcomes_frame
from harness.api import run
from harness.cli import main
from harness.data.evalset import load_evalset
from harness.prompts.variants import render_training_example
from harness.records import Record, Usage
from harness.rundir import Manifest, RunFolder, VariantInfo
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.analysis.test_compare import FT_MODEL, make_evalset, scripted
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAIServer


def do_run(cfg, tmp_path):
    return run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False, use_cache=False))


def test_busy_seconds_is_the_union_of_intervals():
    s = np.array([0.0, 0.5, 3.0, 3.2])
    e = np.array([1.0, 2.0, 4.0, 3.5])
    assert busy_seconds(s, e) == pytest.approx(3.0)
    assert busy_seconds(np.array([]), np.array([])) == 0.0


def _timed(variant, item, start, latency, cache_hit=False):
    return Record(item_id=item, variant=variant, model="llama", model_id="llama", request={}, raw_text="{}",
                  usage=Usage(prompt_tokens=10), latency_s=latency, started_at=start, cache_hit=cache_hit,
                  scores={"correct": True, "format_valid": True}, cost_usd=0.0)


SELF_HOSTED = {"basis": "self-hosted", "source": "self-hosted"}


def test_self_hosted_cost_from_price_per_hour_and_measured_busy_time():
    frame = outcomes_frame([
        _timed("a", "i1", 100.0, 1.0), _timed("a", "i2", 101.0, 1.0),
        _timed("b", "i1", 102.0, 2.0),
        # a cache hit keeps the latency measured when it was answered, and costs what it cost then
        _timed("b", "i2", 200.0, 2.0, cache_hit=True),
    ])
    variants = {n: VariantInfo(model="llama", price=SELF_HOSTED, price_per_hour=3.6) for n in ("a", "b")}
    costs = self_hosted_costs(frame, variants, {})
    # live calls: 4 s busy for 4 s of latency (no overlap); + 2 s cached -> 6 s at $3.6/h = $0.006;
    # a has a third of the latency over 2 calls, b two thirds over 2 calls
    assert costs["a"].cost_per_request == pytest.approx(0.001)
    assert costs["b"].cost_per_request == pytest.approx(0.002)
    assert costs["a"].throughput_rps == pytest.approx(1.0) and costs["b"].throughput_rps == pytest.approx(0.5)
    assert "$3.6/hour" in costs["a"].note and "6.0 s" in costs["a"].note and "1 from the cache" in costs["a"].note


def test_self_hosted_without_price_is_unknown_and_all_cached_is_costed():
    frame = outcomes_frame([_timed("a", "i1", 100.0, 1.0, cache_hit=True)])
    no_price = self_hosted_costs(frame, {"a": VariantInfo(model="llama", price=SELF_HOSTED, price_per_hour=None)}, {})
    assert no_price["a"].cost_per_request is None and "set models.llama.price_per_hour" in no_price["a"].note
    cached = self_hosted_costs(frame, {"a": VariantInfo(model="llama", price=SELF_HOSTED, price_per_hour=3.6)}, {})
    assert cached["a"].cost_per_request == pytest.approx(0.001) and "from the cache" in cached["a"].note


def _slow(body):
    r = scripted()(body)
    r.delay_s = 0.02
    return r


def _box_config(tmp_path, ev, base_url, **extra):
    """One self-hosted model at $36/hour answering the baseline variant, one call at a time."""
    return make_config(tmp_path, ev, base_url,
                       models={"box": {"provider": "openai-compatible", "base_url": base_url,
                                       "model": "my-llama", "price_per_hour": 36.0}},
                       variants=[{"name": "baseline", "kind": "baseline", "model": "box"}],
                       run={"concurrency": 1, "max_tokens": 64}, **extra)


def test_self_hosted_end_to_end(tmp_path):
    ev = make_evalset(tmp_path, n_test=6)
    with FakeOpenAIServer(_slow, models=["my-llama"]) as srv:
        cfg = _box_config(tmp_path, ev, srv.base_url, monthly_requests=1000)
        res = do_run(cfg, tmp_path)
    recs = read_records(res.run_dir / "records.jsonl")
    starts = np.array([r.started_at for r in recs])
    lat = np.array([r.latency_s for r in recs])
    expected = 36.0 / 3600 * busy_seconds(starts, starts + lat) / len(recs)
    row = pd.read_csv(res.run_dir / "summary.csv").iloc[0]
    assert row["price_basis"] == "self-hosted"
    assert row["cost_per_request_usd"] == pytest.approx(expected)
    assert row["cost_per_1k_usd"] == pytest.approx(expected * 1000)
    assert row["monthly_cost_usd"] == pytest.approx(expected * 1000)
    assert row["cost_per_request_usd"] > 0.02 * 36 / 3600 * 0.9  # at least the server delay was paid for
    assert "self-hosted (box) at $36.0/hour" in row["cost_note"]
    assert row["throughput_rps"] > 0


def test_self_hosted_warm_rerun_costs_what_the_cold_run_did(tmp_path):
    ev = make_evalset(tmp_path, n_test=6)
    with FakeOpenAIServer(_slow, models=["my-llama"]) as srv:
        cfg = _box_config(tmp_path, ev, srv.base_url)
        rows = [pd.read_csv(run(cfg, RunOptions(out=tmp_path / name, progress=False)).run_dir / "summary.csv")
                .iloc[0] for name in ("cold", "warm")]
    assert rows[0]["cache_hits"] == 0 and rows[1]["cache_hits"] == 6
    assert rows[1]["cost_per_request_usd"] > 0
    assert rows[1]["cost_per_request_usd"] == pytest.approx(rows[0]["cost_per_request_usd"], rel=0.05)


def test_cost_per_correct_and_monthly_projection(tmp_path):
    ev = make_evalset(tmp_path, n_test=10)
    with FakeOpenAIServer(scripted(wrong={"gpt-4o-mini": {0, 1}}), models=["gpt-4o-mini"]) as srv:
        res = do_run(make_config(tmp_path, ev, srv.base_url, monthly_requests=250_000), tmp_path)
    row = pd.read_csv(res.run_dir / "summary.csv").iloc[0]
    per_request = (100 * 0.15 + 10 * 0.60) / 1e6
    assert row["cost_per_request_usd"] == pytest.approx(per_request)
    assert row["cost_per_1k_usd"] == pytest.approx(per_request * 1000)
    assert row["cost_per_correct_usd"] == pytest.approx(per_request / 0.8)
    assert row["monthly_requests"] == 250_000
    assert row["monthly_cost_usd"] == pytest.approx(5.25)
    report = (res.run_dir / "report.md").read_text()
    assert "Monthly projection at 250,000 requests a month" in report and "| $5.25 |" in report


def chars_tokens(body):
    """prompt_tokens = characters of the messages, so the measured ratio is exactly 1 token per character."""
    reply = scripted()(body)
    reply.prompt_tokens = sum(len(m["content"]) for m in body["messages"])
    return reply


def test_training_cost_from_rendered_examples(tmp_path):
    ev = make_evalset(tmp_path, n_test=5, n_train=12)
    with FakeOpenAIServer(chars_tokens, models=["gpt-4o-mini", FT_MODEL]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url,
                          models={"tuned": {"provider": "openai-compatible", "base_url": srv.base_url,
                                            "model": FT_MODEL}},
                          variants=[{"name": "ft", "kind": "fine_tuned", "model": "tuned"}],
                          finetune={"epochs": 2})
        res = do_run(cfg, tmp_path)
    manifest = RunFolder.open(res.run_dir).manifest
    config = json.loads((res.run_dir / "config.json").read_text())
    est = estimate_training(manifest, config, read_records(res.run_dir / "records.jsonl"))
    evalset = load_evalset(ev)
    chars = sum(len(m["content"]) for it in evalset.train for m in render_training_example(evalset, it))
    assert est.tokens_per_char == pytest.approx(1.0)
    assert est.train_examples == 12 and est.examples_used == 12 and est.training_chars == chars
    assert est.billed_tokens == pytest.approx(chars * 2)
    assert est.price_per_1m == 3.0 and FT_MODEL in est.price_source
    assert est.cost_usd == pytest.approx(chars * 2 * 3.0 / 1e6)
    assert est.calibration.startswith("estimated from 5 measured prompts of variant ft")


def test_training_price_from_table_local_and_unknown():
    manifest = Manifest(evalset={"train_items": 3, "path": "/nonexistent"},
                        variants={"b": {"kind": "baseline", "model": "m"}})
    est = estimate_training(manifest, {"finetune": {"base_model": "gpt-4o-2024-08-06", "epochs": 3}}, [])
    assert est.price_per_1m == 25.0 and "training of gpt-4o-2024-08-06" in est.price_source
    assert est.cost_usd is None and "no measured prompt tokens" in est.note
    est = estimate_training(manifest, {"finetune": {"base_model": "mystery-model"}}, [])
    assert est.price_per_1m is None and "no training price known for mystery-model" in est.price_source



def test_local_training_cost_is_measured_time_times_price_per_hour():
    def local(adapter, pph):
        return Manifest(evalset={"train_items": 3}, variants={"ft": {
            "kind": "fine_tuned", "provider": "local", "price_per_hour": pph, "adapter": adapter}})

    trained = {"path": "a.gguf", "train_seconds": 1800.0, "steps": 56, "batch_size": 8, "train_items": 441,
               "epochs": 1.02}
    est = estimate_training(local(trained, 0.5), {"finetune": {"epochs": 3}}, [])
    assert est.cost_usd == pytest.approx(0.25) and "30.0 min measured x $0.5/hour" in est.price_source
    assert est.epochs == 1.02 and est.steps == 56  # what was run, not the OpenAI epochs setting
    assert est.billed_tokens is None
    # no price_per_hour, or no training record: unknown, never a plausible-looking $0
    est = estimate_training(local(trained, None), {}, [])
    assert est.cost_usd is None and "set price_per_hour" in est.price_source
    est = estimate_training(local({"path": "a.gguf"}, 0.5), {}, [])
    assert est.cost_usd is None and est.epochs is None and "no training record" in est.price_source


def _table(rows):
    return pd.DataFrame([{"variant": v, "kind": k, "status": "ok", "answered": 100, "accuracy": a,
                          "cost_per_request_usd": c} for v, k, a, c in rows])


def test_break_even_arithmetic():
    training = TrainingEstimate(cost_usd=30.0)
    df = _table([("base", "baseline", 0.80, 0.002), ("fs", "few_shot", 0.90, 0.004), ("rag", "rag", 0.95, 0.009),
                 ("ft", "fine_tuned", 0.85, 0.001)])
    be = break_even(df, "ft", training, 5000)
    # cheapest at least as accurate as ft (0.85) is fs: saves 0.003 per request -> 10,000 requests, 2 months
    assert be.reference == "fs" and be.saving_per_request == pytest.approx(0.003)
    assert be.requests == pytest.approx(10_000) and be.months == pytest.approx(2.0)
    assert be.case is Payback.PAYS_BACK and be.reference_cost == 0.004 and be.fine_tuned_cost == 0.001


def test_break_even_never_pays_back_and_most_accurate():
    training = TrainingEstimate(cost_usd=30.0)
    pricier = _table([("fs", "few_shot", 0.90, 0.004), ("ft", "fine_tuned", 0.85, 0.005)])
    be = break_even(pricier, "ft", training, None)
    assert be.requests is None and be.case is Payback.NOT_CHEAPER and be.saving_per_request == pytest.approx(-0.001)
    best = _table([("base", "baseline", 0.80, 0.002), ("ft", "fine_tuned", 0.95, 0.003)])
    be = break_even(best, "ft", training, None)
    assert be.requests is None and be.case is Payback.MOST_ACCURATE and be.reference == "base"
    assert (be.fine_tuned_cost, be.reference_cost) == (0.003, 0.002)
    assert break_even(best, None, training, None).case is Payback.NOT_MEASURED


def decision_run(tmp_path, **extra):
    ev = make_evalset(tmp_path, n_test=30, n_train=12)
    script = scripted(wrong={"gpt-4o-mini": set(range(15))})
    with FakeOpenAIServer(script, models=["gpt-4o-mini", "gpt-4o", FT_MODEL]) as srv:
        url = srv.base_url
        cfg = make_config(
            tmp_path, ev, url,
            models={"mini": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o-mini"},
                    "big": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o"},
                    "tuned": {"provider": "openai-compatible", "base_url": url, "model": FT_MODEL}},
            variants=[{"name": "zero", "kind": "baseline", "model": "mini"},
                      {"name": "big", "kind": "baseline", "model": "big"},
                      {"name": "ft", "kind": "fine_tuned", "model": "tuned"}],
            **extra)
        return do_run(cfg, tmp_path), ev


def test_decision_summary_from_measured_facts(tmp_path, capsys):
    res, ev = decision_run(tmp_path, target_accuracy=0.9, monthly_requests=100_000)
    assert main(["report", str(res.run_dir)]) == 0
    assert "report.html" in capsys.readouterr().out
    report = (res.run_dir / "report.md").read_text()
    summary = report.split("## Decision summary")[1].split("## Results")[0]
    assert "There are 12 training examples" in summary
    # zero (50%) and big (100%) are prompt-only; big is best and its interval includes 90% -> not short
    assert "The best prompt-only variant, big, reached 100.0% accuracy (95% CI 88.6%–100.0%, 30 items)" in summary
    assert "does not fall significantly short" in summary
    assert "Fine-tuning (ft) changed by 0.0 percentage points of accuracy against big on 30 paired items" in summary
    # ft is as accurate as big and cheaper per request: break-even against big
    ft_cost = (100 * 0.30 + 10 * 1.20) / 1e6
    big_cost = (100 * 2.50 + 10 * 10.0) / 1e6
    df = pd.read_csv(res.run_dir / "summary.csv").set_index("variant")
    assert df.loc["ft", "cost_per_request_usd"] == pytest.approx(ft_cost)
    assert df.loc["big", "cost_per_request_usd"] == pytest.approx(big_cost)
    evalset = load_evalset(ev)
    recs = [r for r in read_records(res.run_dir / "records.jsonl") if r.variant == "ft"]
    ratio = sum(r.usage.prompt_tokens for r in recs) / sum(len(m["content"]) for r in recs
                                                            for m in r.request["messages"])
    chars = sum(len(m["content"]) for it in evalset.train for m in render_training_example(evalset, it))
    training = ratio * chars * 3 * 3.0 / 1e6
    n = training / (big_cost - ft_cost)
    assert f"pays back after {n:,.0f} requests" in summary
    assert f"within the first month (about {n / 100_000 * 30.44:.2g} days) at 100,000 requests a month" in summary
    # paired comparisons vs the first baseline-kind variant (zero): +50 pp, p = 2 / 2**15
    assert df.loc["ft", "vs_variant"] == "zero" and df.loc["ft", "accuracy_diff"] == pytest.approx(0.5)
    assert df.loc["ft", "accuracy_p"] == pytest.approx(2 / 2**15)
    assert df.loc["ft", "wrong_to_right"] == 15 and df.loc["ft", "right_to_wrong"] == 0


def test_prompting_significantly_short_and_folder_gone(tmp_path):
    ev = make_evalset(tmp_path, n_test=30, n_train=12)
    with FakeOpenAIServer(scripted(wrong={"gpt-4o-mini": set(range(15))}), models=["gpt-4o-mini"]) as srv:
        res = do_run(make_config(tmp_path, ev, srv.base_url, target_accuracy=0.9), tmp_path)
    report = (res.run_dir / "report.md").read_text()
    assert "reached 50.0% accuracy (95% CI 33.2%–66.8%, 30 items), significantly short of the 90% target" in report
    assert "No fine-tuned variant was measured" in report
    # no fine-tuned variant: the estimate is for the configured base model, calibrated on the baseline's prompts
    assert "prompts of variant baseline" in report and "training of gpt-4o-mini-2024-07-18" in report
    shutil.rmtree(ev)
    assert main(["report", str(res.run_dir)]) == 0
    report = (res.run_dir / "report.md").read_text()
    assert "Training cost could not be estimated" in report and "is gone" in report


def test_target_not_set_is_said(tmp_path):
    ev = make_evalset(tmp_path, n_test=5)
    with FakeOpenAIServer(scripted(), models=["gpt-4o-mini"]) as srv:
        res = do_run(make_config(tmp_path, ev, srv.base_url), tmp_path)
    assert "no target_accuracy is set" in (res.run_dir / "report.md").read_text()
