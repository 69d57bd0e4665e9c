"""`harness finetune local`: a LoRA for the embedded Gemma 3 270M, as a GGUF adapter llama.cpp loads over the Q4 base.

This module is the command: it reads the config (which variant, which base GGUF, where the adapter goes),
has `lora` train and write the adapter, has `adapter` check it in llama.cpp, and records what made the
adapter in a `.json` beside it. The training text is in `examples`, the training in `lora`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.config import RunConfig, VariantConfig
from harness.data.evalset import EvalSet
from harness.errors import HarnessError
from harness.finetune.adapter import VerifyResult, base_tensors, peft_dir_for, print_verify, verify_adapter
from harness.finetune.console import Out, print_line
from harness.finetune.data import leakage_lines, pick_variant, served_at_url, training_items
from harness.finetune.lora import Trained, TrainingJob, require_packages, train_adapter
from harness.finetune.vllm import vllm_lines
from harness.prompts.variants import prompt_of

DEFAULT_ADAPTER_NAME = "gemma-3-270m-lora.gguf"
# The embedded model's full-precision Hugging Face original, which vLLM serves the PEFT copy of the adapter over.
EMBEDDED_HF_BASE = "google/gemma-3-270m"
VERIFY_EXAMPLES = 3


@dataclass
class LocalResult:
    adapter: Path
    steps: int
    examples: int
    seconds: float
    train_seconds: float
    first_loss: float | None
    last_loss: float | None
    device: str
    verify: VerifyResult | None = None
    losses: list[float] = field(default_factory=list)


def plan_job(cfg: RunConfig, evalset: EvalSet, v: VariantConfig, *, out: Path | None, max_steps: int | None,
             seed: int | None, echo: Out) -> TrainingJob:
    """What to train for variant `v`, from the config and the command line: its base GGUF, the train split
    without test repeats, the seed and steps, and the adapter path (--out, the model's `lora:`, else the
    default under `finetune.output_dir`)."""
    from harness.models import local

    ft = cfg.finetune
    model_cfg = cfg.models[v.model]
    base_gguf = model_cfg.gguf or local.ensure_gguf()
    seed = ft.seed if seed is None else seed
    system_role = model_cfg.effective_system_role
    if system_role:
        echo("warning     the gemma chat format drops system messages, so the instructions would be lost; "
             f"set models.{v.model}.system_role: false (training drops them too, to match)")
    split = training_items(evalset, seed=seed, validation_share=ft.validation_share, max_items=ft.max_train_items,
                           keep_leaked=cfg.run.keep_leaked)
    for line in leakage_lines(split):
        echo(line)
    if len(split.train) < 1:
        raise HarnessError(f"{evalset.path}: no training items left after removing test duplicates")
    arch, shapes = base_tensors(base_gguf)
    if arch != "gemma3":
        raise HarnessError(f"{base_gguf}: architecture {arch}; local fine-tuning supports gemma3 (Gemma 3 270M)")
    return TrainingJob(base_gguf=base_gguf, arch=arch, shapes=shapes,
                       adapter=out or model_cfg.lora or ft.output_dir / DEFAULT_ADAPTER_NAME, evalset=evalset,
                       split=split, system_role=system_role, settings=ft, seed=seed,
                       max_steps=max_steps or ft.max_steps, prompt=prompt_of(v))


def _device(torch: Any) -> tuple[str, str]:
    """("cuda", the GPU's name) when torch sees a GPU, else ("cpu", its thread count)."""
    if torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name(0)
    return "cpu", f"{torch.get_num_threads()} threads"


def _verify(job: TrainingJob, echo: Out) -> VerifyResult:
    free_text = job.evalset.schema is None  # a whole reply needs more room than a JSON label
    res = verify_adapter(job.base_gguf, job.adapter, job.evalset, job.split.train[:VERIFY_EXAMPLES],
                         job.system_role, prompt=job.prompt, max_tokens=128 if free_text else 48)
    print_verify(res, echo)
    return res


def _write_metadata(job: TrainingJob, v: VariantConfig, trained: Trained, result: LocalResult,
                    torch_version: str) -> None:
    """`<adapter>.json`: the data, settings, seed, losses, timings and check that made this adapter."""
    meta = {
        "adapter": str(job.adapter), "base_gguf": str(job.base_gguf), "variant": v.name, "model": v.model,
        "evalset": {"path": str(job.evalset.path), "content_hash": job.evalset.content_hash},
        "train_items": trained.examples, "validation_items": trained.validation_examples,
        "excluded_train_items": job.split.excluded,
        "leaked_train_items": {"near_duplicates_of_test_items": job.split.leaked, "kept": job.split.keep_leaked},
        "settings": {**job.settings.model_dump(mode="json"), "seed": job.seed, "max_steps": job.max_steps,
                     "steps": trained.steps},
        "system_role": job.system_role, "device": result.device, "torch": torch_version,
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "first_loss": trained.first_loss, "last_loss": trained.last_loss,
        "losses": [round(x, 5) for x in trained.losses],
        "validation_loss": ({"before": trained.val_before, "after": trained.val_after}
                            if trained.validation_examples else None),
        "train_seconds": round(trained.train_seconds, 1), "total_seconds": round(result.seconds, 1),
        "verify": asdict(result.verify) if result.verify else None,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = job.adapter.with_name(job.adapter.name + ".json")
    path.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")


def train_local(cfg: RunConfig, evalset: EvalSet, *, config_path: str = "CONFIG", variant: str | None = None,
                out: Path | None = None, max_steps: int | None = None, seed: int | None = None,
                verify: bool = True, progress: bool = True, echo: Out = print_line) -> LocalResult:
    """Train a LoRA on the train split for the config's local fine-tuned variant and write its GGUF adapter."""
    t_start = time.perf_counter()
    torch = require_packages()["torch"]
    v = pick_variant(cfg, variant, "local")
    job = plan_job(cfg, evalset, v, out=out, max_steps=max_steps, seed=seed, echo=echo)
    device, device_note = _device(torch)
    torch.manual_seed(job.seed)  # LoRA's initial A matrices; the batch order has its own seeded Random
    echo(f"variant     {v.name} (model {v.model}); base {job.base_gguf}")
    echo(f"device      {device} ({device_note})")
    trained = train_adapter(job, torch, device, progress=progress, echo=echo)
    result = LocalResult(adapter=job.adapter, steps=trained.steps, examples=trained.examples, seconds=0.0,
                         train_seconds=trained.train_seconds, first_loss=trained.first_loss,
                         last_loss=trained.last_loss, device=device, losses=trained.losses)
    if verify:
        result.verify = _verify(job, echo)
    result.seconds = time.perf_counter() - t_start
    _write_metadata(job, v, trained, result, torch.__version__)
    echo(f"time        {result.seconds / 60:.1f} min in total ({device})")
    served = served_at_url(cfg, v)  # a variant asked at a URL serves the PEFT copy (vLLM), not the GGUF
    lora_path = cfg.models[v.model].lora
    if not served and (lora_path is None or (out is not None and out != lora_path)):
        echo(f"config      set models.{v.model}.lora: {job.adapter} in {config_path} so variant {v.name!r} serves it")
    if not served:
        echo(f"next        harness run {config_path} --variants {v.name}")
    peft_dir = peft_dir_for(job.adapter)
    echo(f"peft        {peft_dir}: the same LoRA for vLLM (trained on the Q4 weights; over the full-precision "
         f"model its answers may differ slightly from llama.cpp's)")
    name, key = (cfg.models[v.model].model or v.model, v.model) if served else (f"{v.model}-lora", f"{v.model}-vllm")
    lines = vllm_lines(cfg, base=EMBEDDED_HF_BASE, adapter_dir=peft_dir, name=name, key=key,
                       variant=v.name if served else None, json_task=evalset.schema is not None,
                       config_path=config_path)
    for line in lines if served else lines[:1]:
        echo(line)
    return result
