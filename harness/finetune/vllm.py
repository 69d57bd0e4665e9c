"""What to run after a LoRA is trained, to evaluate it served by vLLM: the `vllm serve` line that loads the PEFT
adapter folder over its base, and the config entry that asks for it (an openai-compatible model)."""

from __future__ import annotations

from pathlib import Path

from harness.config import RunConfig

VLLM_URL = "http://localhost:8000/v1"
VLLM_DEFAULT_MAX_RANK = 16  # vLLM refuses a higher rank unless --max-lora-rank says so


def vllm_lines(cfg: RunConfig, *, base: str, adapter_dir: Path, name: str, key: str, variant: str | None,
               json_task: bool, config_path: str) -> list[str]:
    """`name` is what vLLM serves the adapter as (the model id a request asks for), `key` the config's name of
    the model that asks for it, `variant` the fine_tuned variant on that model (None: one to add)."""
    rank = cfg.finetune.lora_rank
    rank_flag = f" --max-lora-rank {rank}" if rank > VLLM_DEFAULT_MAX_RANK else ""
    lines = [f"serve       vllm serve {base} --enable-lora --lora-modules {name}={adapter_dir}{rank_flag}"]
    m = cfg.models.get(key)
    if m is not None and m.base_url and (m.model or key) == name:  # any model served at a URL under that name
        lines.append(f"config      models.{key} in {config_path} already asks for {name!r} at {m.base_url}")
    else:
        decoding = ["      structured_output: json_schema"] if json_task else []
        lines += [f"config      to evaluate it, in {config_path}:", "  models:", f"    {key}:",
                  "      provider: openai-compatible", f"      base_url: {VLLM_URL}", f"      model: {name}",
                  *decoding, "      price_per_hour: 0  # what the GPU serving it costs per hour"]
        if variant is None or cfg.models.get(key) is None:
            lines += ["  variants:", f"    - {{name: {name}, kind: fine_tuned, model: {key}}}"]
    lines.append(f"next        harness run {config_path}" + (f" --variants {variant}" if variant and m else ""))
    return lines
