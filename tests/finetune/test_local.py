"""`harness finetune local`: the training text matches llama.cpp's gemma format, the adapter GGUF is what
llama.cpp loads, and a short LoRA run on the embedded model changes its answers.

The end-to-end test is marked `finetune` (it needs the extra: torch, transformers, peft, gguf) and skips with
the reason when those are not installed; the format tests need only gguf / llama-cpp-python.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

from harness.config import load_config
from harness.data.evalset import load_evalset
from harness.errors import HarnessError
from harness.finetune.adapter import base_tensors, write_adapter
from harness.finetune.examples import (
    Example,
    batch_plan,
    gemma_prompt,
    shared_prefix_len,
    step_count,
    training_text,
)
from harness.finetune.local import train_local
from harness.finetune.lora import INSTALL_HINT, require_packages
from tests.conftest import write_task_evalset

TRAIN = [
    ("l01", "my card never arrived in the post", "card_arrival", False),
    ("l02", "I lost my card on the bus", "lost_card", True),
    ("l03", "refund the duplicate payment please", "refund", False),
    ("l04", "still waiting for the new card", "card_arrival", False),
    ("l05", "my wallet with the card was stolen", "lost_card", True),
    ("l06", "I returned the shoes, where is my money", "refund", False),
    ("l07", "card delivery is taking forever", "card_arrival", True),
    ("l08", "cannot find my card anywhere", "lost_card", True),
    ("l09", "the shop promised a refund weeks ago", "refund", False),
    ("l10", "when does the replacement card come", "card_arrival", False),
    ("l11", "someone took my card at the gym", "lost_card", True),
    ("l12", "money back for a cancelled order", "refund", False),
    ("l13", "the courier never brought my card", "card_arrival", False),
    ("l14", "card missing since yesterday", "lost_card", True),
    ("l15", "I was charged twice and want a refund", "refund", False),
    ("l16", "tracking says my card is delayed", "card_arrival", False),
]
TEST = [("x1", "where is my new card", "card_arrival", False), ("x2", "my card was stolen", "lost_card", True)]


def _have(*mods: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in mods)


def _base_gguf() -> Path:
    from harness.models import local

    try:
        return local.ensure_gguf()
    except HarnessError as exc:
        pytest.skip(f"embedded model not available: {exc}")


@pytest.fixture
def local_setup(tmp_path: Path) -> Path:
    d = write_task_evalset(tmp_path / "evalsets" / "loc", TRAIN, TEST)
    cfg = {
        "name": "loc",
        "evalset": str(d),
        "models": {"gemma-ft": {"provider": "local", "lora": str(tmp_path / "out" / "adapter.gguf")}},
        "variants": [{"name": "fine-tuned", "kind": "fine_tuned", "model": "gemma-ft"}],
        "finetune": {"output_dir": str(tmp_path / "out"), "lora_rank": 4, "lora_alpha": 8, "max_steps": 12,
                     "batch_size": 4, "learning_rate": 1e-3, "seed": 1},
    }
    path = tmp_path / "loc.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_training_text_is_what_llama_cpp_sends():
    if not _have("llama_cpp"):
        pytest.skip("llama-cpp-python is not installed")
    from llama_cpp.llama_chat_format import format_gemma

    messages = [{"role": "system", "content": "dropped by gemma"}, {"role": "user", "content": "Hi\n\nthere"},
                {"role": "assistant", "content": '{"a": 1}'}, {"role": "user", "content": "again"}]
    assert gemma_prompt(messages) == format_gemma(messages).prompt
    prompt, answer = training_text([*messages[1:2], {"role": "assistant", "content": '{"a": 1}'}])
    assert prompt == "<start_of_turn>user\nHi\n\nthere<end_of_turn>\n<start_of_turn>model\n"
    assert answer == '{"a": 1}<end_of_turn>'


def test_shared_prefix_stops_inside_every_prompt():
    a = Example("a", [2, 5, 6, 7, 8, 9], n_prompt=4)
    b = Example("b", [2, 5, 6, 7, 1], n_prompt=4)
    assert shared_prefix_len([a, b]) == 3  # identical through index 3, capped at n_prompt - 1
    c = Example("c", [2, 5, 4, 7, 1], n_prompt=4)
    assert shared_prefix_len([a, b, c]) == 2


def test_batch_plan_is_seeded_and_covers_every_example_per_epoch():
    plan = batch_plan(10, 4, 6, seed=3)
    assert plan == batch_plan(10, 4, 6, seed=3)
    assert [len(b) for b in plan] == [4, 4, 2, 4, 4, 2]
    assert sorted(i for b in plan[:3] for i in b) == list(range(10))
    assert step_count(441, 8, 1.0, None) == 56 and step_count(441, 8, 2.0, None) == 111
    assert step_count(441, 8, 1.0, 40) == 40 and step_count(16, 4, 1.0, 12) == 12  # max_steps wins


def test_missing_packages_name_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # makes `import peft` raise ImportError
    with pytest.raises(HarnessError, match=r"needs .*peft.*pip install torch==2\.13\.0 && pip install -e '\.\[finetune\]'"):
        require_packages()


@pytest.mark.local_model
def test_adapter_gguf_loads_in_llama_cpp_and_changes_the_answer(tmp_path):
    """A hand-made adapter (no torch needed): right names, shapes and keys for llama.cpp."""
    if not _have("gguf", "llama_cpp", "numpy"):
        pytest.skip("needs gguf and llama-cpp-python")
    import numpy as np
    from llama_cpp import Llama

    base = _base_gguf()
    arch, shapes = base_tensors(base)
    assert arch == "gemma3" and shapes["blk.0.attn_q.weight"] == (640, 1024)
    rng = np.random.default_rng(0)
    rank = 4
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith(("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight")):
            n_in, n_out = shape
            tensors[f"{name}.lora_a"] = rng.normal(0, 0.05, (rank, n_in)).astype(np.float32)
            tensors[f"{name}.lora_b"] = rng.normal(0, 0.05, (n_out, rank)).astype(np.float32)
    adapter = tmp_path / "a.gguf"
    write_adapter(adapter, tensors, arch=arch, alpha=8.0, shapes=shapes)

    import gguf

    reader = gguf.GGUFReader(str(adapter))
    field = reader.fields["general.type"]
    assert bytes(field.parts[field.data[0]]).decode() == "adapter"
    assert float(reader.fields["adapter.lora.alpha"].parts[-1][0]) == 8.0

    prompt = [{"role": "user", "content": "Say hello."}]
    answers = []
    for lora in (None, adapter):
        llm = Llama(model_path=str(base), lora_path=str(lora) if lora else None, n_ctx=256, chat_format="gemma",
                    verbose=False)
        try:
            answers.append(llm.create_chat_completion(prompt, temperature=0, max_tokens=8)["choices"][0]["message"])
        finally:
            llm.close()
    assert answers[0] != answers[1]

    bad = dict(tensors)
    bad["blk.0.attn_q.weight.lora_a"] = bad["blk.0.attn_q.weight.lora_a"].T.copy()
    with pytest.raises(HarnessError, match="blk.0.attn_q.weight.lora_a: shape"):
        write_adapter(tmp_path / "bad.gguf", bad, arch=arch, alpha=8.0, shapes=shapes)


def need_finetune_extra() -> Path:
    """The embedded model's GGUF, once the fine-tuning extra is there; a skip naming what is missing (a failure
    under HARNESS_STRICT_SKIPS=1, as in CI) otherwise."""
    missing = [m for m in ("torch", "transformers", "peft", "gguf", "llama_cpp") if not _have(m)]
    if missing:
        pytest.skip(f"local fine-tuning extra not installed ({', '.join(missing)}): {INSTALL_HINT}")
    return _base_gguf()


@pytest.mark.finetune
def test_lora_on_the_embedded_model_changes_its_answers(tmp_path, local_setup):
    need_finetune_extra()
    cfg = load_config(local_setup)
    ev = load_evalset(cfg.evalset)
    lines: list[str] = []
    res = train_local(cfg, ev, config_path=str(local_setup), progress=False, echo=lines.append)

    adapter = tmp_path / "out" / "adapter.gguf"
    assert res.adapter == adapter and adapter.exists()
    assert res.steps == 12 and len(res.losses) == 12 and res.examples == 16
    assert sum(res.losses[-3:]) < sum(res.losses[:3])  # it learned something
    assert res.verify is not None and not res.verify.skipped
    assert res.verify.changed, res.verify.rows  # llama.cpp + adapter answers differently from the base
    meta = json.loads(adapter.with_name(adapter.name + ".json").read_text())
    assert meta["settings"]["lora_rank"] == 4 and meta["settings"]["steps"] == 12 and meta["train_items"] == 16
    text = "\n".join(lines)
    assert "llama.cpp loads the adapter; answers changed" in text
    assert "time " in text
