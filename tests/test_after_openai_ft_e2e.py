"""Issue 21, point 5: the whole "your OpenAI fine-tune after 2027-01-06" path, on the shipped config
configs/after_openai_ft.yaml (only its eval set, the vLLM URL, the output folder and the training size are
rewritten), against loopback servers:

  answers of the production fine-tune on the train split -> distillation export -> LoRA on the embedded model
  (GGUF + PEFT folder) -> the LoRA "served by vLLM" -> a label-free run with production as the reference ->
  the gate on agreement.

The "production fine-tune" and the newer model are one fake OpenAI endpoint (OPENAI_BASE_URL), the "vLLM" a
second one serving the LoRA's name; the LoRA really is trained (a few steps on the CPU: marked finetune and
local_model, like tests/finetune/test_local.py). The day is fixed: 2026-12-05, when gpt-4o-mini retires in 40
days (2027-01-14) and new OpenAI fine-tuning jobs close in 32 (2027-01-06).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import main
from harness.rundir import RunFolder
from tests.conftest import REPO, write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text
from tests.finetune.test_local import need_finetune_extra

pytestmark = [pytest.mark.finetune, pytest.mark.local_model]

CONFIG = REPO / "configs" / "after_openai_ft.yaml"
SOURCE = REPO / "evalsets" / "support-triage"
TODAY = "2026-12-05"
PROD, NEWER, LORA = "ft:gpt-4o-mini-2024-07-18:acme::abc123", "gpt-5.4-mini", "acme-triage-lora"
N_TEST, N_LABELLED, N_TRAIN = 12, 6, 12
TEAMS = ["network", "hardware", "installations", "mobile", "accounts", "billing"]
PRIORITIES = ["low", "normal", "high", "urgent"]


def _rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SOURCE / name).read_text("utf-8").splitlines() if line.strip()]


def _teacher(label: dict[str, Any]) -> dict[str, Any]:
    """Production's answer on a train item: a valid answer that is never the label (so distillation shows)."""
    return {"team": label["team"], "priority": PRIORITIES[(PRIORITIES.index(label["priority"]) + 1) % 4],
            "refund_eligible": not label["refund_eligible"]}


def _other(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer that disagrees with `answer` on the team (the primary score is exact on the whole answer)."""
    return {**answer, "team": TEAMS[(TEAMS.index(answer["team"]) + 1) % len(TEAMS)]}


class Script:
    """Who answers what, item by item: production (the reference), the newer model, a good and a worse LoRA."""

    def __init__(self) -> None:
        self.test, self.train = _rows("test.jsonl")[:N_TEST], _rows("train.jsonl")[:N_TRAIN]
        self.prod: dict[str, dict[str, Any]] = {}
        for i, r in enumerate(self.test):  # right on most labels, wrong on every fourth item
            self.prod[r["input"]["body"]] = _other(r["expected"]) if i % 4 == 1 else r["expected"]
        for r in self.train:
            self.prod[r["input"]["body"]] = _teacher(r["expected"])
        bodies = [r["input"]["body"] for r in self.test]
        # the newer model: right on every labelled item (where production is wrong on two), and unlike production
        # on two label-free ones
        self.newer = {b: (r["expected"] if i < N_LABELLED else _other(self.prod[b]) if i in (7, 10) else self.prod[b])
                      for i, (b, r) in enumerate(zip(bodies, self.test, strict=True))}
        self.good_lora = {b: (_other(self.prod[b]) if i == 3 else self.prod[b]) for i, b in enumerate(bodies)}
        self.worse_lora = {b: (self.prod[b] if i < 2 else _other(self.prod[b])) for i, b in enumerate(bodies)}

    def handler(self, answers: dict[str, dict[str, dict[str, Any]]]):
        def answer(body: dict[str, Any]) -> Reply:
            text = last_user_text(body)
            by_body = answers.get(body["model"])
            if by_body is None:
                return Reply(status=404, raw_body=b'{"error": {"message": "model not found"}}')
            hit = next((a for b, a in by_body.items() if b in text), None)
            if hit is None:
                return Reply(status=500)  # an unscripted prompt: an error record, never a silent answer
            return Reply(text=json.dumps(hit), prompt_tokens=len(text) // 4 + 200, completion_tokens=18)
        return answer


def _evalset(tmp: Path, script: Script) -> Path:
    """A copy of support-triage: 12 test items, only the first 6 with `expected` (the rest label-free), 12 train
    items, every doc (RAG)."""
    d = tmp / "evalsets" / "triage"
    shutil.copytree(SOURCE / "docs", d / "docs")
    shutil.copy(SOURCE / "task.yaml", d / "task.yaml")
    test = [r if i < N_LABELLED else {k: v for k, v in r.items() if k not in ("expected", "expected_doc_ids")}
            for i, r in enumerate(script.test)]
    write_jsonl(d / "test.jsonl", test)
    write_jsonl(d / "train.jsonl", script.train)
    return d


def _config(tmp: Path, evalset: Path, vllm_url: str, name: str = "after.yaml") -> Path:
    """The shipped config with the test's eval set, the fake vLLM's URL, a temporary output folder and a tiny
    training (10 items, 3 steps of 2); everything else as shipped."""
    cfg = yaml.safe_load(CONFIG.read_text("utf-8"))
    cfg["evalset"] = str(evalset)
    cfg["models"]["open-lora"]["base_url"] = vllm_url
    cfg["run"]["concurrency"] = 4
    cfg["finetune"].update(output_dir=str(tmp / "ft"), max_train_items=10, max_steps=3, batch_size=2)
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _main(*argv: str) -> int:
    return main([str(a) for a in argv])


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch):
    script = Script()
    openai = FakeOpenAIServer(script.handler({PROD: script.prod, NEWER: script.newer}), models=[PROD, NEWER]).start()
    vllm = FakeOpenAIServer(script.handler({LORA: script.good_lora}), models=[LORA]).start()
    worse = FakeOpenAIServer(script.handler({LORA: script.worse_lora}), models=[LORA]).start()
    monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)  # provider: openai, as shipped, asks the fake
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    yield script, openai, vllm, worse
    for s in (openai, vllm, worse):
        s.stop()


def _answers(run_dir: Path, variant: str) -> dict[str, Any]:
    return {r.item_id: (r.parsed if r.error is None else None)
            for r in RunFolder.open(run_dir).latest_records() if r.variant == variant}


def _train_split_answers(cfg: Path, tmp: Path, script: Script) -> Path:
    """(a) production answers the train split: the answers the LoRA will learn."""
    out = tmp / "prod-train"
    assert _main("run", cfg, "--split", "train", "--variants", "production", "--out", out, "--today", TODAY,
                 "--no-progress") == 0
    got = _answers(out, "production")
    assert got == {r["id"]: _teacher(r["expected"]) for r in script.train}  # every train item, none failed
    return out


def _distillation_export(cfg: Path, train_run: Path, tmp: Path, script: Script, capsys) -> None:
    """(b) the training file's assistant turns are production's answers, not the labels."""
    out = tmp / "distilled.jsonl"
    assert _main("finetune", "export", cfg, "--from-run", train_run, "--variant", "production", "--out", out) == 0
    printed = capsys.readouterr().out
    assert f"10 of {N_TRAIN} train items" in printed and "2 not sampled" in printed, printed
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(rows) == 10  # finetune.max_train_items (OpenAI asks for 10 at least)
    for row in rows:
        *prompt, answer = row["messages"]
        item = next(r for r in script.train if r["input"]["body"] in prompt[-1]["content"])
        assert answer["role"] == "assistant"
        assert json.loads(answer["content"]) == _teacher(item["expected"]) != item["expected"]


def _lora(cfg: Path, train_run: Path, tmp: Path, capsys) -> Path:
    """(c) the LoRA on the embedded model, trained on production's answers: the GGUF adapter, its PEFT copy for
    vLLM, and the `vllm serve` line that serves it under the name the config asks for."""
    assert _main("finetune", "local", cfg, "--from-run", train_run, "--variant", "production", "--no-progress") == 0
    printed = capsys.readouterr().out
    gguf, peft_dir = tmp / "ft" / "gemma-3-270m-lora.gguf", tmp / "ft" / "gemma-3-270m-lora-peft"
    assert gguf.exists() and (peft_dir / "adapter_model.safetensors").exists()
    assert "10 of 12 train items use variant production's recorded answer" in printed
    assert "variant     open-lora (model open-lora)" in printed  # the variant vLLM serves, not production
    assert f"vllm serve google/gemma-3-270m --enable-lora --lora-modules {LORA}={peft_dir}" in printed
    assert f"models.open-lora in {cfg} already asks for '{LORA}'" in printed
    assert "llama.cpp loads the adapter; answers changed" in printed
    meta = json.loads(gguf.with_name(gguf.name + ".json").read_text())
    assert meta["variant"] == "open-lora" and meta["train_items"] == 10 and meta["settings"]["steps"] == 3
    adapter_cfg = json.loads((peft_dir / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 8 and set(adapter_cfg["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    return peft_dir


def _peft_changes_the_embedded_model(peft_dir: Path) -> None:
    """The PEFT folder loads back with peft over the embedded model's weights (read by transformers from the
    GGUF: ~30 s on 2 cores) and changes its output."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from harness.models import local

    base = local.ensure_gguf()
    model = AutoModelForCausalLM.from_pretrained(str(base.parent), gguf_file=base.name, local_files_only=True,
                                                 dtype=torch.float32).eval()
    ids = torch.tensor([[2, 105, 2364, 107, 8291, 236787, 951, 8093]])  # token ids: no tokenizer to convert
    with torch.no_grad():
        before = model(input_ids=ids).logits
        after = PeftModel.from_pretrained(model, str(peft_dir)).eval()(input_ids=ids).logits
    assert before.shape == after.shape
    assert not torch.allclose(before, after, atol=1e-4)


def _label_free_run(cfg: Path, out: Path, capsys) -> str:
    """(d, e) every variant on the test split, half of it label-free, with production as the reference."""
    assert _main("run", cfg, "--out", out, "--today", TODAY, "--no-progress") == 0
    capsys.readouterr()
    records = RunFolder.open(out).latest_records()
    assert len(records) == 5 * N_TEST and not [r for r in records if r.error]
    return (out / "report.md").read_text("utf-8")


def _decision(report: str) -> str:
    return report.split("## Decision summary", 1)[1].split("\n## ", 1)[0]


def test_after_openai_fine_tuning_closes(tmp_path, servers, capsys):
    need_finetune_extra()
    script, openai, vllm, worse = servers
    evalset = _evalset(tmp_path, script)
    cfg = _config(tmp_path, evalset, vllm.base_url)
    train_run = _train_split_answers(cfg, tmp_path, script)
    capsys.readouterr()
    _distillation_export(cfg, train_run, tmp_path, script, capsys)
    _peft_changes_the_embedded_model(_lora(cfg, train_run, tmp_path, capsys))
    assert {b["model"] for b in vllm.requests} == set()  # nothing asked the "vLLM" before the run

    accepted = tmp_path / "accepted"
    report = _label_free_run(cfg, accepted, capsys)
    assert {b["model"] for b in vllm.requests} == {LORA} and len(vllm.requests) == N_TEST
    # as the LoRA was trained (gemma's format has no system turn): the instructions arrive in the user turn
    assert all(m["role"] == "user" for b in vllm.requests for m in b["messages"])
    assert {b["model"] for b in openai.requests} == {PROD, NEWER}
    decision = _decision(report)
    assert "open-lora agrees with production on 92% [65%, 99%] of 12 items" in decision
    assert "newer-rag agrees with production on 67%" in decision
    assert (f"production ({PROD}) serves until 2027-01-14: 1 month left as of {TODAY}" in decision
            and "new fine-tuning jobs can be created until 2027-01-06" in decision)
    assert "pays back after" in decision and "at 200,000 requests a month" in decision
    assert "| months it can still serve | 1.3 |" in report
    assert "agreement with production (95% CI)" in report
    assert "- **open-lora**: agreement with production on 12 of 12 items" in report

    # (f) the gate on agreement: the run against itself passes; a LoRA that answers worse fails it. The candidate
    # also sees less traffic (50 requests a month), so production's break-even outlasts its service life.
    assert _main("compare", accepted, accepted, "--metric", "agreement") == 0
    capsys.readouterr()
    worse_cfg = _config(tmp_path, evalset, worse.base_url, "candidate.yaml")
    data = yaml.safe_load(worse_cfg.read_text())
    worse_cfg.write_text(yaml.safe_dump({**data, "monthly_requests": 50}, sort_keys=False))
    candidate = tmp_path / "candidate"
    decision = _decision(_label_free_run(worse_cfg, candidate, capsys))
    assert "open-lora agrees with production on 17%" in decision
    assert "but production retires before it pays back: needs 3 months, has 1 month" in decision, decision
    assert _main("compare", accepted, candidate, "--metric", "agreement") == 1
    gate = capsys.readouterr().out
    assert "variant open-lora" in gate and "FAIL" in gate and "agreement-drop" in gate.split("result:", 1)[1], gate
