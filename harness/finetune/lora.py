"""The LoRA training itself: load the base from its GGUF, attach LoRA, run the steps, write the adapter.

Why these choices:
- The base comes from the same GGUF the local server runs (transformers dequantises it), so the adapter is
  trained against exactly the weights it will be applied to; nothing is downloaded.
- Every example starts with the same instructions (~300 of ~360 tokens in the demo). Each step runs that
  shared prefix once and the per-example rest against its cached keys/values (gradients flow through the
  cache), which gives the same loss and gradients as the plain batch at about a third of the compute; and the
  262k-word output layer is applied only at answer positions. That is what makes a 2-core CPU enough.
- torch, transformers, peft and gguf are an optional extra, imported only here and only when asked for.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import FinetuneSettings
from harness.data.evalset import EvalSet
from harness.errors import HarnessError
from harness.finetune.adapter import TARGETS, lora_tensors, peft_dir_for, save_peft_adapter, write_adapter
from harness.finetune.console import Out
from harness.finetune.data import TrainingSplit
from harness.finetune.examples import Example, batch_plan, shared_prefix_len, step_count, tokenize
from harness.prompts.variants import PromptSpec

INSTALL_HINT = "pip install torch==2.13.0 && pip install -e '.[finetune]'"


def require_packages() -> dict[str, Any]:
    """Import the extra's packages, or say exactly what to install."""
    mods: dict[str, Any] = {}
    missing = []
    for name in ("torch", "transformers", "peft", "gguf"):
        try:
            mods[name] = __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise HarnessError(f"local fine-tuning needs {', '.join(missing)}; run: {INSTALL_HINT} "
                           f"(torch 2.13.0 CPU is on the machines' disk; a GPU build also works)")
    return mods


# -- the model ------------------------------------------------------------------------------------------------


def load_base(gguf_path: Path, torch: Any, device: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True,
                                                     dtype=torch.float32)
    except Exception as exc:  # transformers raises many kinds for an unreadable GGUF
        raise HarnessError(f"{gguf_path}: transformers could not load this GGUF ({type(exc).__name__}: {exc}); "
                           f"local fine-tuning supports the embedded Gemma 3 270M") from exc
    return tokenizer, model.to(device)


def attach_lora(model: Any, ft: FinetuneSettings) -> Any:
    """The base wrapped with LoRA on the attention projections, in training mode."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=ft.lora_rank, lora_alpha=ft.lora_alpha, lora_dropout=0.0, bias="none",
                      target_modules=list(TARGETS), task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # a transformers deprecation that peft triggers; not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(model, lora)
    model.train()
    return model


def batch_loss(model: Any, examples: list[Example], prefix: int, torch: Any, device: str,
               *, reduction: str = "mean") -> Any:
    """Cross-entropy on the answer tokens of a batch, running the shared prefix once.

    The prefix's keys/values are computed for one sequence and repeated across the batch; the per-example
    parts attend to them through the cache. Gradients reach the LoRA weights through both parts.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    body, head = inner.model, inner.lm_head
    b = len(examples)
    cache = None
    if prefix > 0:
        pre = torch.tensor([examples[0].ids[:prefix]], device=device)
        cache = body(input_ids=pre, use_cache=True).past_key_values
        cache.batch_repeat_interleave(b)
    length = max(len(e.ids) for e in examples) - prefix
    ids = torch.zeros((b, length), dtype=torch.long, device=device)
    mask = torch.zeros((b, prefix + length), dtype=torch.long, device=device)
    labels = torch.full((b, length), -100, dtype=torch.long, device=device)
    for i, e in enumerate(examples):
        rest = e.ids[prefix:]
        ids[i, :len(rest)] = torch.tensor(rest, device=device)
        mask[i, :prefix + len(rest)] = 1
        labels[i, e.n_prompt - prefix:len(rest)] = torch.tensor(e.ids[e.n_prompt:], device=device)
    hidden = body(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=cache is not None)
    h = hidden.last_hidden_state[:, :-1]
    target = labels[:, 1:]
    keep = target != -100
    logits = head(h[keep]).float()
    softcap = getattr(inner.config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return torch.nn.functional.cross_entropy(logits, target[keep], reduction=reduction)


def mean_loss(model: Any, examples: list[Example], prefix: int, torch: Any, device: str, batch_size: int) -> float:
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            total += float(batch_loss(model, chunk, prefix, torch, device, reduction="sum"))
            n += sum(len(e.ids) - e.n_prompt for e in chunk)
    return total / max(n, 1)


# -- the steps ------------------------------------------------------------------------------------------------


def warmup_then_decay(steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up over the first tenth, then linear decay; stable with few
    steps."""
    warmup = max(1, steps // 10)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return lr_factor


def run_steps(model: Any, train: list[Example], plan: list[list[int]], prefix: int, torch: Any, device: str,
              *, learning_rate: float, progress: bool, loss_fn: Callable[..., Any] | None = None) -> list[float]:
    """AdamW with gradient clipping over the planned batches; returns the loss of every step. `loss_fn` (default
    `batch_loss`, the embedded model's shared-prefix loss) takes (model, examples, prefix, torch, device)."""
    loss_fn = loss_fn or batch_loss
    from tqdm import tqdm

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_decay(len(plan)))
    losses: list[float] = []
    bar = tqdm(plan, desc="LoRA", unit="step", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        for idx in bar:
            loss = loss_fn(model, [train[i] for i in idx], prefix, torch, device)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            recent = losses[-10:]
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}", refresh=False)
    finally:
        bar.close()
    return losses


# -- one training run -----------------------------------------------------------------------------------------


@dataclass
class TrainingJob:
    """What to train: the base GGUF (and its tensor shapes), the data, the settings, where the adapter goes."""

    base_gguf: Path
    arch: str
    shapes: dict[str, tuple[int, ...]]
    adapter: Path
    evalset: EvalSet
    split: TrainingSplit
    system_role: bool
    settings: FinetuneSettings
    seed: int
    max_steps: int | None
    prompt: PromptSpec | None = None  # the fine-tuned variant's prompt overrides (harness.prompts.variants)


class LossCurve:
    """The training loss at the start and at the end (means of the first and last five steps)."""

    losses: list[float]

    @property
    def first_loss(self) -> float:
        return sum(self.losses[:5]) / len(self.losses[:5])

    @property
    def last_loss(self) -> float:
        return sum(self.losses[-5:]) / len(self.losses[-5:])


@dataclass
class Trained(LossCurve):
    """What a training run did; the model itself is gone once the adapter is written."""

    steps: int
    examples: int
    validation_examples: int
    losses: list[float]
    train_seconds: float
    val_before: float | None
    val_after: float | None


def _examples(tokenizer: Any, job: TrainingJob, echo: Out) -> tuple[list[Example], list[Example], int]:
    """(train, validation, shared prefix length) in tokens."""
    split, ev = job.split, job.evalset
    train = tokenize(tokenizer, split.train, ev, job.system_role, echo, job.prompt)
    val = tokenize(tokenizer, split.validation, ev, job.system_role, echo, job.prompt) if split.validation else []
    if not train:
        raise HarnessError("no training example fits the model's context")
    return train, val, shared_prefix_len(train + val)


def _print_plan(job: TrainingJob, train: list[Example], val: list[Example], prefix: int, steps: int,
                echo: Out) -> None:
    ft = job.settings
    mean_len = sum(len(e.ids) for e in train) / len(train)
    excluded = job.split.excluded
    echo(f"data        {len(train)} examples (~{mean_len:.0f} tokens, {prefix} shared)"
         + (f", {len(val)} validation" if val else "") + (f"; {len(excluded)} train item(s) repeating a "
                                                          f"test item left out" if excluded else ""))
    echo(f"training    {steps} steps x batch {ft.batch_size} = {steps * ft.batch_size / len(train):.2f} epochs; "
         f"LoRA r={ft.lora_rank} alpha={ft.lora_alpha:g} on {', '.join(TARGETS)}; lr {ft.learning_rate:g}; "
         f"seed {job.seed}")


def _print_outcome(job: TrainingJob, t: Trained, echo: Out) -> None:
    echo(f"loss        {t.first_loss:.3f} (first steps) -> {t.last_loss:.3f} (last steps) on answer tokens; "
         f"{t.train_seconds / 60:.1f} min for {t.steps} steps ({t.train_seconds / t.steps:.1f} s/step)")
    if t.val_before is not None and t.val_after is not None:
        echo(f"validation  loss {t.val_before:.3f} -> {t.val_after:.3f} on {t.validation_examples} held-back "
             f"train items")
    echo(f"adapter     {job.adapter} ({job.adapter.stat().st_size / 1024:.0f} KB)")


def train_adapter(job: TrainingJob, torch: Any, device: str, *, progress: bool, echo: Out) -> Trained:
    """Load the base, train LoRA on the job's examples, and write the GGUF adapter to `job.adapter`."""
    ft = job.settings
    t0 = time.perf_counter()
    tokenizer, model = load_base(job.base_gguf, torch, device)
    echo(f"loaded      base model from GGUF in {time.perf_counter() - t0:.0f} s")
    train, val, prefix = _examples(tokenizer, job, echo)
    steps = step_count(len(train), ft.batch_size, ft.local_epochs, job.max_steps)
    plan = batch_plan(len(train), ft.batch_size, steps, job.seed)
    _print_plan(job, train, val, prefix, steps, echo)

    model = attach_lora(model, ft)
    val_before = mean_loss(model, val, prefix, torch, device, ft.batch_size) if val else None
    t_train = time.perf_counter()
    losses = run_steps(model, train, plan, prefix, torch, device, learning_rate=ft.learning_rate,
                       progress=progress)
    train_s = time.perf_counter() - t_train
    model.eval()
    val_after = mean_loss(model, val, prefix, torch, device, ft.batch_size) if val else None
    write_adapter(job.adapter, lora_tensors(model), arch=job.arch, alpha=ft.lora_alpha, shapes=job.shapes)
    save_peft_adapter(model, peft_dir_for(job.adapter))  # the same LoRA as a PEFT folder, for vLLM
    trained = Trained(steps=steps, examples=len(train), validation_examples=len(val), losses=losses,
                      train_seconds=train_s, val_before=val_before, val_after=val_after)
    _print_outcome(job, trained, echo)
    return trained
