"""LoRA on any Hugging Face causal-LM folder (`finetune.base_model_path`), saved as a PEFT adapter for vLLM.

Why these choices:
- The training text is the base's own chat template applied to the fine-tuned variant's messages, exactly as
  vLLM applies it to a chat request, so the adapter learns the prompts it will be served; the loss covers the
  answer and the template's end-of-turn marker (so the model learns to stop), never the prompt.
- A plain forward per batch (no shared-prefix cache as for the embedded model): it works for every
  architecture transformers loads; CUDA when torch sees a GPU (bf16 weights, fp32 LoRA), the CPU otherwise.
- The adapter is peft's `save_pretrained` folder (adapter_config.json + adapter_model.safetensors), which
  `vllm serve BASE --enable-lora --lora-modules NAME=DIR` loads, written to a temporary folder and moved into
  place so a server never reads half of one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import FinetuneSettings
from harness.data.evalset import EvalSet
from harness.errors import HarnessError
from harness.finetune.adapter import save_peft_adapter
from harness.finetune.console import Out
from harness.finetune.data import TrainingSplit
from harness.finetune.examples import MAX_SEQ_TOKENS, Example, batch_plan, step_count, tokenised_examples
from harness.finetune.lora import LossCurve, run_steps
from harness.prompts.variants import PromptSpec, render_training_example
from harness.records import EvalItem, Message

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")  # vLLM serves LoRA on these for every Llama-like model
WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin")


@dataclass
class HFJob:
    """What to train: the base folder, the data, the settings, and the adapter folder to write."""

    base_dir: Path
    adapter_dir: Path
    evalset: EvalSet
    split: TrainingSplit
    system_role: bool
    settings: FinetuneSettings
    seed: int
    max_steps: int | None
    prompt: PromptSpec | None = None


def check_base_dir(base: Path) -> None:
    """A Hugging Face model folder: config.json, weights and a tokenizer; one line naming what is missing."""
    where = f"finetune.base_model_path: {base}"
    if not base.is_dir():
        raise HarnessError(f"{where}: folder not found; give a Hugging Face model folder (config.json, weights, "
                           f"tokenizer), e.g. one written by `huggingface-cli download ORG/MODEL --local-dir DIR`")
    if not (base / "config.json").exists():
        raise HarnessError(f"{where}: no config.json; this is not a Hugging Face model folder")
    if not any(any(base.glob(p)) for p in WEIGHT_FILES):
        raise HarnessError(f"{where}: no weights (*.safetensors or pytorch_model*.bin)")
    if not any((base / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise HarnessError(f"{where}: no tokenizer (tokenizer.json / tokenizer_config.json)")


def load_hf_base(base: Path, torch: Any, device: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_base_dir(base)
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(base), local_files_only=True, dtype=dtype)
    except Exception as exc:  # transformers raises many kinds for a folder it cannot read
        raise HarnessError(f"finetune.base_model_path: {base}: transformers could not load it as a causal LM "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise HarnessError(f"finetune.base_model_path: {base}: the tokenizer has no chat_template, so neither the "
                           f"training text nor vLLM's chat requests can be built; use an instruct model's folder")
    return tokenizer, model.to(device)


def chat_texts(tokenizer: Any, messages: list[Message]) -> tuple[str, str]:
    """(prompt, answer): the prompt as vLLM renders a chat request (generation prompt added), the answer as the
    template writes the assistant turn after it (its end-of-turn marker included)."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if full.startswith(prompt) and len(full) > len(prompt):
        return prompt, full[len(prompt):]
    return prompt, messages[-1]["content"] + (tokenizer.eos_token or "")


def hf_examples(tokenizer: Any, items: list[EvalItem], job: HFJob, echo: Out) -> list[Example]:
    """Prompt and answer tokenised apart, without special tokens added (the template writes them), as vLLM
    tokenises a templated chat prompt."""
    limit = min(MAX_SEQ_TOKENS, int(getattr(tokenizer, "model_max_length", MAX_SEQ_TOKENS) or MAX_SEQ_TOKENS))
    return tokenised_examples(
        tokenizer, items, lambda item: chat_texts(tokenizer, render_training_example(
            job.evalset, item, system_role=job.system_role, prompt=job.prompt)), limit, bos=False, out=echo)


def hf_loss(model: Any, examples: list[Example], prefix: int, torch: Any, device: str,
            *, reduction: str = "mean") -> Any:
    """Cross-entropy on the answer tokens of a right-padded batch (`prefix` is unused: no shared cache)."""
    b, length = len(examples), max(len(e.ids) for e in examples)
    ids = torch.zeros((b, length), dtype=torch.long, device=device)
    mask = torch.zeros((b, length), dtype=torch.long, device=device)
    labels = torch.full((b, length), -100, dtype=torch.long, device=device)
    for i, e in enumerate(examples):
        ids[i, :len(e.ids)] = torch.tensor(e.ids, device=device)
        mask[i, :len(e.ids)] = 1
        labels[i, e.n_prompt:len(e.ids)] = torch.tensor(e.ids[e.n_prompt:], device=device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    target = labels[:, 1:]
    keep = target != -100
    return torch.nn.functional.cross_entropy(logits[keep].float(), target[keep], reduction=reduction)


def attach_hf_lora(model: Any, ft: FinetuneSettings) -> Any:
    """LoRA on the attention projections where the model names them q/k/v/o_proj (what vLLM serves for
    Llama-like models), else on peft's default modules for the architecture."""
    import warnings

    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in ATTENTION if t in names] or None
    lora = LoraConfig(r=ft.lora_rank, lora_alpha=ft.lora_alpha, lora_dropout=0.0, bias="none",
                      target_modules=targets, task_type="CAUSAL_LM")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = get_peft_model(model, lora)
    except ValueError as exc:
        raise HarnessError(f"peft cannot attach LoRA to this model ({str(exc).splitlines()[0]})") from exc
    model.train()
    return model


@dataclass
class HFTrained(LossCurve):
    steps: int
    examples: int
    losses: list[float]
    train_seconds: float
    verify: list[dict[str, Any]]


def _greedy(model: Any, tokenizer: Any, ex: Example, torch: Any, device: str, max_new: int) -> str:
    ids = torch.tensor([ex.ids[:ex.n_prompt]], device=device)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id or 0)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def verify_rows(model: Any, tokenizer: Any, examples: list[Example], torch: Any, device: str,
                max_new: int = 48) -> list[dict[str, Any]]:
    """Greedy answers to a few training prompts without and with the adapter: the adapter must change them."""
    model.eval()
    rows = []
    for ex in examples:
        with model.disable_adapter():
            base = _greedy(model, tokenizer, ex, torch, device, max_new)
        rows.append({"item_id": ex.item_id, "base": base, "adapter": _greedy(model, tokenizer, ex, torch, device,
                                                                              max_new)})
    return rows


def train_hf_adapter(job: HFJob, torch: Any, device: str, *, progress: bool, verify: bool, echo: Out) -> HFTrained:
    """Load the base folder, train LoRA on the job's examples, and save the PEFT adapter to `job.adapter_dir`."""
    ft = job.settings
    t0 = time.perf_counter()
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    tokenizer, model = load_hf_base(job.base_dir, torch, device)
    echo(f"loaded      base model from {job.base_dir} in {time.perf_counter() - t0:.0f} s")
    train = hf_examples(tokenizer, job.split.train, job, echo)
    if not train:
        raise HarnessError("no training example fits the model's context")
    steps = step_count(len(train), ft.batch_size, ft.local_epochs, job.max_steps)
    plan = batch_plan(len(train), ft.batch_size, steps, job.seed)
    model = attach_hf_lora(model, ft)
    echo(f"training    {len(train)} examples; {steps} steps x batch {ft.batch_size}; LoRA r={ft.lora_rank} "
         f"alpha={ft.lora_alpha:g}; lr {ft.learning_rate:g}; seed {job.seed}")
    t_train = time.perf_counter()
    losses = run_steps(model, train, plan, 0, torch, device, learning_rate=ft.learning_rate, progress=progress,
                       loss_fn=hf_loss)
    train_s = time.perf_counter() - t_train
    save_peft_adapter(model, job.adapter_dir)
    rows = verify_rows(model, tokenizer, train[:3], torch, device) if verify else []
    return HFTrained(steps, len(train), losses, train_s, rows)


def write_metadata(job: HFJob, trained: HFTrained, device: str, variant: str | None) -> Path:
    """`<adapter_dir>.json`: what made the adapter (data, settings, seed, losses, timing), beside the folder so
    vLLM's loader never sees it."""
    path = job.adapter_dir.with_name(job.adapter_dir.name + ".json")
    meta = {"adapter": str(job.adapter_dir), "base_model_path": str(job.base_dir), "variant": variant,
            "evalset": {"path": str(job.evalset.path), "content_hash": job.evalset.content_hash},
            "train_items": trained.examples, "excluded_train_items": job.split.excluded,
            "leaked_train_items": {"near_duplicates_of_test_items": job.split.leaked, "kept": job.split.keep_leaked},
            "settings": {**job.settings.model_dump(mode="json"), "seed": job.seed, "steps": trained.steps},
            "device": device, "losses": [round(x, 5) for x in trained.losses],
            "train_seconds": round(trained.train_seconds, 1), "verify": trained.verify}
    path.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return path
