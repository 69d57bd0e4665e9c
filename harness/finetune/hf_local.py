"""`harness finetune local` with `finetune.base_model_path`: a LoRA on a Hugging Face model, served by vLLM.

This module is the command: which variant's prompts, which data, where the adapter folder goes, and what to
run next (the `vllm serve` line and the config entry that evaluates the adapter). The training is in hf_lora.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness import variant_kinds
from harness.config import RunConfig, VariantConfig
from harness.data.evalset import EvalSet
from harness.errors import HarnessError
from harness.finetune.console import Out, print_line
from harness.finetune.data import leakage_lines, training_items
from harness.finetune.hf_lora import HFJob, HFTrained, train_hf_adapter, write_metadata
from harness.finetune.local import LocalResult, _device
from harness.finetune.lora import require_packages
from harness.finetune.vllm import vllm_lines
from harness.prompts.variants import prompt_of


def served_variant(cfg: RunConfig, name: str | None) -> VariantConfig | None:
    """The fine_tuned variant the adapter is for (its prompts are trained on): --variant, else
    finetune.variant, else the first fine_tuned variant on an openai-compatible model (how vLLM is reached);
    None when the config has none yet (the eval set's own prompt is used, and the entry to add is printed)."""
    chosen = name or cfg.finetune.variant
    if chosen:
        try:
            v = cfg.variant(chosen)
        except KeyError:
            raise HarnessError(f"variant {chosen!r} is not in the config (variants: "
                               f"{', '.join(x.name for x in cfg.variants)})") from None
        if not variant_kinds.kind_class(v.kind).trains:
            raise HarnessError(f"variant {chosen!r} is kind {v.kind}; a LoRA is trained for a fine_tuned variant")
        return v
    tuned = [v for v in cfg.variants if variant_kinds.kind_class(v.kind).trains]
    return next((v for v in tuned if cfg.models[v.model].base_url), None)  # one served at a URL (vLLM)


def serve_name(cfg: RunConfig, v: VariantConfig | None) -> str:
    """The name vLLM serves the adapter as: the model id the variant's model asks for, else `<config>-lora`."""
    if v is not None:
        return cfg.models[v.model].model or v.model
    return f"{cfg.name}-lora"


def _print_verify(rows: list[dict[str, object]], echo: Out) -> None:
    if not rows:
        return
    for r in rows:
        echo(f"verify      {r['item_id']}:")
        echo(f"              base:    {str(r['base']).strip()[:120]!r}")
        echo(f"              adapter: {str(r['adapter']).strip()[:120]!r}")
    changed = any(r["base"] != r["adapter"] for r in rows)
    echo(f"verify      answers with the adapter {'changed' if changed else 'DID NOT change'} on "
         f"{len(rows)} training prompt(s)")


def train_hf(cfg: RunConfig, evalset: EvalSet, *, config_path: str = "CONFIG", variant: str | None = None,
             out: Path | None = None, max_steps: int | None = None, seed: int | None = None, verify: bool = True,
             progress: bool = True, echo: Out = print_line) -> LocalResult:
    """Train a LoRA on `finetune.base_model_path` over the train split and write its PEFT adapter folder."""
    t_start = time.perf_counter()
    torch = require_packages()["torch"]
    ft = cfg.finetune
    assert ft.base_model_path is not None
    v = served_variant(cfg, variant)
    name = serve_name(cfg, v)
    seed = ft.seed if seed is None else seed
    split = training_items(evalset, seed=seed, validation_share=ft.validation_share, max_items=ft.max_train_items,
                           keep_leaked=cfg.run.keep_leaked)
    for line in leakage_lines(split):
        echo(line)
    if not split.train:
        raise HarnessError(f"{evalset.path}: no training items left after removing test duplicates")
    system_role = cfg.models[v.model].effective_system_role if v is not None else True
    default_dir = ft.output_dir / (name if name.endswith("-lora") else f"{name}-lora")
    job = HFJob(base_dir=ft.base_model_path, adapter_dir=out or default_dir, evalset=evalset,
                split=split, system_role=system_role, settings=ft, seed=seed, max_steps=max_steps or ft.max_steps,
                prompt=prompt_of(v))
    device, note = _device(torch)
    torch.manual_seed(seed)
    echo(f"variant     {v.name + ' (model ' + v.model + ')' if v else 'none yet'}; base {job.base_dir}")
    echo(f"device      {device} ({note})")
    trained: HFTrained = train_hf_adapter(job, torch, device, progress=progress, verify=verify, echo=echo)
    echo(f"loss        {trained.first_loss:.3f} (first steps) -> {trained.last_loss:.3f} (last steps) on answer "
         f"tokens; {trained.train_seconds / 60:.1f} min for {trained.steps} steps")
    echo(f"adapter     {job.adapter_dir} (PEFT: adapter_config.json + adapter_model.safetensors)")
    _print_verify(trained.verify, echo)
    write_metadata(job, trained, device, v.name if v else None)
    seconds = time.perf_counter() - t_start
    echo(f"time        {seconds / 60:.1f} min in total ({device})")
    for line in vllm_lines(cfg, base=str(job.base_dir), adapter_dir=job.adapter_dir, name=name,
                           key=v.model if v is not None else name, variant=v.name if v else None,
                           json_task=evalset.schema is not None, config_path=config_path):
        echo(line)
    return LocalResult(adapter=job.adapter_dir, steps=trained.steps, examples=trained.examples, seconds=seconds,
                       train_seconds=trained.train_seconds, first_loss=trained.first_loss,
                       last_loss=trained.last_loss, device=device, losses=trained.losses)
