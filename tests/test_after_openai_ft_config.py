"""The shipped configs/after_openai_ft.yaml (tests/test_after_openai_ft_e2e.py runs it end to end) validates
offline: without a key it names the one missing variable once per model that needs it, and the vLLM-served LoRA
needs none; with one it is ready, and warns that the production fine-tune retires in 40 days. `finetune local`
trains the LoRA that vLLM serves."""

from __future__ import annotations

import pytest

from harness.cli import main
from tests.conftest import REPO

CONFIG = REPO / "configs" / "after_openai_ft.yaml"


def test_validate_names_each_missing_key_once(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["validate", str(CONFIG), "--today", "2026-12-05"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":", 2)[1].strip() for line in err] == ["models.production", "models.newer"]
    assert all("OPENAI_API_KEY is not set" in line for line in err)


def test_validate_with_a_key_is_ready_and_warns_of_the_retirement(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    assert main(["validate", str(CONFIG), "--today", "2026-12-05"]) == 0
    out = capsys.readouterr().out
    assert "ready: `harness run" in out and "would run 5 variant(s)" in out
    assert "variant  open-lora: fine_tuned on acme-triage-lora (openai-compatible, json_schema); price self-hosted" in out
    assert "which retires on 2027-01-14, in 40 days" in out


def test_finetune_local_trains_for_the_lora_vllm_serves():
    """The embedded model's LoRA is trained for the fine_tuned variant asked at a URL (vLLM serves its PEFT copy),
    not refused because that variant's provider is not `local`; production (OpenAI) is never picked."""
    from harness.config import load_config
    from harness.finetune.data import pick_variant

    cfg = load_config(CONFIG)
    assert pick_variant(cfg, None, "local").name == "open-lora"
    assert pick_variant(cfg, None, None).name == "production"  # `finetune export` / `openai`: the first remote one
