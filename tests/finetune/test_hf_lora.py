"""LoRA on open weights (issue 21, point 4): `harness finetune local` with `finetune.base_model_path` trains on a
Hugging Face causal-LM folder and writes a PEFT adapter folder that peft (and vLLM) loads over the same base.

The base is a tiny Llama the test builds from a config with random weights, and its tokenizer a word-level one
trained on the eval set's own text: nothing is downloaded, and a few steps on the CPU take seconds.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.data.evalset import load_evalset
from harness.prompts.variants import render_training_example
from tests.conftest import write_task_evalset

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "peft", "tokenizers")),
    reason="needs the finetune extra (torch, transformers, peft)")

TRAIN = [(f"h{i:02d}", f"my card message number {i}", ["card_arrival", "lost_card", "refund"][i % 3], i % 2 == 0)
         for i in range(12)]
TEST = [("x1", "where is my new card", "card_arrival", False)]
SPECIAL = ["[PAD]", "[UNK]", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
            "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def _evalset(tmp_path: Path) -> Path:
    d = write_task_evalset(tmp_path / "evalsets" / "hf", TRAIN, TEST)
    return d


def _tiny_base(folder: Path, evalset: Path) -> Path:
    """A 2-layer Llama with random weights and a word-level tokenizer (with a chat template) trained on the
    eval set's rendered training text, saved as a Hugging Face model folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    ev = load_evalset(evalset)
    texts = [m["content"] for it in ev.train + ev.test for m in render_training_example(ev, it)]
    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                                  eos_token="</s>", additional_special_tokens=SPECIAL[4:])
    tok.chat_template = TEMPLATE
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.convert_tokens_to_ids("<|end|>"))
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _config(tmp_path: Path, evalset: Path, base: Path) -> Path:
    cfg = {
        "name": "hf",
        "evalset": str(evalset),
        "models": {"lora-tuned": {"provider": "openai-compatible", "base_url": "http://localhost:8000/v1",
                                  "model": "card-lora"}},
        "variants": [{"name": "open-lora", "kind": "fine_tuned", "model": "lora-tuned"}],
        "finetune": {"output_dir": str(tmp_path / "out"), "base_model_path": str(base), "lora_rank": 4,
                     "lora_alpha": 8, "max_steps": 6, "batch_size": 4, "learning_rate": 0.01, "seed": 1},
    }
    path = tmp_path / "hf.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_lora_on_a_hugging_face_folder_is_a_peft_adapter_that_changes_the_model(tmp_path, capsys):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    evalset = _evalset(tmp_path)
    base = _tiny_base(tmp_path / "tiny-llama", evalset)
    cfg = _config(tmp_path, evalset, base)
    assert main(["finetune", "local", str(cfg), "--no-progress"]) == 0
    printed = capsys.readouterr().out

    adapter = tmp_path / "out" / "card-lora"
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    adapter_cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 4 and set(adapter_cfg["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert "device      cpu" in printed  # no GPU here; CUDA is picked when torch sees one
    assert f"vllm serve {base} --enable-lora --lora-modules card-lora={adapter}" in printed
    assert "models.lora-tuned" in printed and "harness run" in printed
    meta = json.loads((tmp_path / "out" / "card-lora.json").read_text())
    assert meta["train_items"] == len(TRAIN) and meta["settings"]["steps"] == 6 and len(meta["losses"]) == 6

    ids = torch.tensor([[2, 5, 6, 7, 8, 9, 10, 11]])
    with torch.no_grad():
        plain = AutoModelForCausalLM.from_pretrained(base).eval()
        before = plain(input_ids=ids).logits
        tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()
        after = tuned(input_ids=ids).logits
    assert before.shape == after.shape
    assert not torch.allclose(before, after, atol=1e-4)  # the adapter changes the model's output


def test_a_folder_that_is_not_a_model_is_one_line(tmp_path, capsys):
    evalset = _evalset(tmp_path)
    (tmp_path / "empty").mkdir()
    cfg = _config(tmp_path, evalset, tmp_path / "empty")
    assert main(["finetune", "local", str(cfg), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: finetune.base_model_path:") and "config.json" in err and "\n" not in err
