"""The demo config end to end on the real embedded model: every variant, a few items, the table checked."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.api import run
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.conftest import REPO
from tests.models.test_local import write_lora_gguf

pytestmark = pytest.mark.local_model


@pytest.fixture(scope="module")
def small_adapter(tmp_path_factory) -> Path:
    """A faint random adapter: enough to make the fine-tuned alias a different model, small enough that
    the answers stay answers. (The real one comes from `harness finetune local`.)"""
    rng = np.random.default_rng(1)
    tensors = {}
    for layer in range(18):
        tensors[f"blk.{layer}.attn_output.weight.lora_a"] = rng.standard_normal((4, 1024)) * 0.05
        tensors[f"blk.{layer}.attn_output.weight.lora_b"] = rng.standard_normal((640, 4)) * 0.05
    return write_lora_gguf(tmp_path_factory.mktemp("adapter") / "faint.gguf", tensors, alpha=4.0)


def test_demo_runs_every_variant_on_the_local_model(tmp_path, small_adapter):
    cfg = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    cfg["evalset"] = str(REPO / "evalsets" / "support-triage")
    cfg["models"]["gemma-ft"]["lora"] = str(small_adapter)
    cfg["finetune"]["output_dir"] = str(tmp_path / "ft")
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = run(path, RunOptions(out=tmp_path / "run", progress=False, use_cache=False, limit=2))
    assert res.status == "completed", res.message
    assert res.skipped == {}
    df = pd.read_csv(res.run_dir / "summary.csv").set_index("variant")
    assert list(df.index) == ["baseline", "few-shot", "rag", "fine-tuned"]
    assert (df["status"] == "ok").all()
    assert (df["n"] == 2).all() and (df["errors"] == 0).all()
    # json_object + schema is grammar-constrained on llama.cpp: every answer parses and validates.
    assert (df["format_valid"] == 1.0).all()
    # self-hosted: costed from price_per_hour x the server's measured busy time
    assert (df["cost_per_request_usd"] > 0).all() and (df["cost_per_request_usd"] < 0.001).all()
    assert (df["price_basis"] == "self-hosted").all()
    assert (df["latency_p50_s"] > 0).all() and (df["prompt_tokens_mean"] > 100).all()
    # few-shot and RAG prompts are longer than the bare one
    assert df.loc["few-shot", "prompt_tokens_mean"] > df.loc["baseline", "prompt_tokens_mean"]
    assert df.loc["rag", "prompt_tokens_mean"] > df.loc["baseline", "prompt_tokens_mean"]
    assert 0 <= df.loc["rag", "recall_at_k"] <= 1
    recs = read_records(res.run_dir / "records.jsonl")
    for r in recs:
        assert all(m["role"] != "system" for m in r.request["messages"])  # gemma drops system turns
        assert r.request["response_format"]["type"] == "json_object"
        assert isinstance(r.parsed, dict) and set(r.parsed) == {"team", "priority", "refund_eligible"}
    assert all(len(r.shot_ids) == 4 for r in recs if r.variant == "few-shot")
    assert all(r.retrieved_doc_ids for r in recs if r.variant == "rag")
    assert {r.model_id for r in recs if r.variant == "fine-tuned"} == {"gemma-3-270m-ft"}
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    assert manifest["rag"]["chunks"] > 22
    md = (res.run_dir / "summary.md").read_text()
    assert "| baseline |" in md and "constrained decoding" in md
