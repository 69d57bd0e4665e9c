"""The LoRA adapter as a GGUF file that llama.cpp loads over the Q4 base, and the check that it does.

Tensor names and shapes follow llama.cpp's adapter loader (checked against the base GGUF before writing),
the file is written atomically so a server starting meanwhile never reads half of it, and `verify_adapter`
loads it exactly as the local server will (llama.cpp, base + `lora_path`) to see that answers change.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.data.evalset import EvalSet
from harness.data.text import match_key
from harness.errors import HarnessError
from harness.finetune.console import Out
from harness.finetune.examples import MAX_SEQ_TOKENS
from harness.prompts.variants import PromptSpec, render_prompt
from harness.records import EvalItem

# PEFT module name -> llama.cpp tensor name (blk.N.<this>.weight)
TARGETS = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}


# -- the adapter file -----------------------------------------------------------------------------------------


def base_tensors(gguf_path: Path) -> tuple[str, dict[str, tuple[int, ...]]]:
    """The base GGUF's architecture and tensor shapes (ggml order), to name and check the adapter's tensors."""
    import gguf

    reader = gguf.GGUFReader(str(gguf_path))
    f = reader.fields["general.architecture"]
    arch = bytes(f.parts[f.data[0]]).decode()
    return arch, {t.name: tuple(int(x) for x in t.shape) for t in reader.tensors}


def lora_tensors(model: Any) -> dict[str, Any]:
    """`blk.N.attn_q.weight.lora_a` -> numpy array, in PEFT's own layout: A is (rank, in), B is (out, rank).

    gguf-py writes numpy shapes reversed as ggml `ne`, so A lands as ne=[in, rank] and B as ne=[rank, out],
    which is what llama.cpp's adapter loader checks against the base tensor (ne=[in, out]).
    """
    out: dict[str, Any] = {}
    for name, module in model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in getattr(module, "lora_A", {}):
            continue
        parts = name.split(".")
        if "layers" not in parts or parts[-1] not in TARGETS:
            continue
        layer = int(parts[parts.index("layers") + 1])
        base = f"blk.{layer}.{TARGETS[parts[-1]]}.weight"
        out[f"{base}.lora_a"] = module.lora_A["default"].weight.detach().float().cpu().numpy()
        out[f"{base}.lora_b"] = module.lora_B["default"].weight.detach().float().cpu().numpy()
    return out


def _check_shapes(tensors: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> None:
    for name, arr in tensors.items():
        base = name.rsplit(".", 1)[0]
        if base not in shapes:
            raise HarnessError(f"adapter tensor {name}: the base model has no tensor {base}")
        n_in, n_out = shapes[base][0], shapes[base][1]
        want = (arr.shape[0], n_in) if name.endswith(".lora_a") else (n_out, arr.shape[1])
        if tuple(arr.shape) != want:
            raise HarnessError(f"adapter tensor {name}: shape {tuple(arr.shape)}, expected {want}")


def write_adapter(path: Path, tensors: dict[str, Any], *, arch: str, alpha: float,
                  shapes: dict[str, tuple[int, ...]]) -> None:
    """A GGUF LoRA adapter as llama.cpp reads it (general.type=adapter, adapter.type=lora,
    adapter.lora.alpha; scale = alpha / rank), checked against the base's tensor shapes before writing."""
    import gguf

    _check_shapes(tensors, shapes)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(tmp), arch)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_name(f"{path.stem} (harness LoRA)")
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
        for name in sorted(tensors):
            writer.add_tensor(name, tensors[name].astype("float32"))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(tmp, path)  # a run that starts meanwhile never sees half an adapter


def peft_dir_for(gguf_adapter: Path) -> Path:
    """Where the embedded model's LoRA is also written as a PEFT folder: `<adapter>-peft/` beside the GGUF."""
    return gguf_adapter.with_name(gguf_adapter.stem + "-peft")


def save_peft_adapter(model: Any, adapter_dir: Path) -> None:
    """peft's adapter folder (adapter_config.json + adapter_model.safetensors), which vLLM's --lora-modules
    loads: written beside the target and moved into place, so a server never reads half of one."""
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = adapter_dir.with_name(f".{adapter_dir.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), save_embedding_layers=False)  # LoRA only; no lookup of the base online
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    tmp.rename(adapter_dir)


# -- check it in llama.cpp ------------------------------------------------------------------------------------


@dataclass
class VerifyResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None

    @property
    def changed(self) -> bool:
        return any(r["base"] != r["adapter"] for r in self.rows)

    @property
    def adapter_correct(self) -> int:
        return sum(r["adapter_correct"] for r in self.rows)

    @property
    def base_correct(self) -> int:
        return sum(r["base_correct"] for r in self.rows)


def _parses_to(text: str, expected: Any) -> bool:
    try:
        return json.loads(text.strip()) == expected
    except ValueError:
        return False


def _matches(text: str, expected: Any) -> bool:
    """The task's own notion of an exact answer: the JSON value, or for a free-text task the normalised text
    (any of the acceptable strings)."""
    if isinstance(expected, str):
        expected = [expected]
    if isinstance(expected, list) and expected and all(isinstance(e, str) for e in expected):
        return match_key(text) in {match_key(e) for e in expected}
    return _parses_to(text, expected)


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """llama.cpp logs adapter loading even with verbose=False, through a Python callback to sys.stderr and
    straight to fd 2; keep the command's output readable."""
    try:
        saved = os.dup(2)
    except OSError:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
        return
    sys.stderr.flush()
    try:
        with open(os.devnull, "wb") as devnull, contextlib.redirect_stderr(io.StringIO()):
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _answers(llama: Any, base: Path, lora: Path | None, evalset: EvalSet, items: list[EvalItem],
             system_role: bool, max_tokens: int, prompt: PromptSpec | None = None) -> list[str]:
    """Greedy, unconstrained answers of the base (with the adapter when `lora` is given) to the items."""
    threads = os.cpu_count() or 1
    try:
        with _quiet_native_stderr():
            llm = llama(model_path=str(base), lora_path=str(lora) if lora else None, n_ctx=MAX_SEQ_TOKENS,
                        chat_format="gemma", n_threads=threads, n_threads_batch=threads, verbose=False, seed=0)
    except (ValueError, RuntimeError) as exc:
        raise HarnessError(f"llama.cpp could not load {lora or base}: {exc}") from exc
    try:
        return [
            llm.create_chat_completion(render_prompt(evalset, it.input, system_role=system_role, prompt=prompt),
                                       temperature=0.0, max_tokens=max_tokens)["choices"][0]["message"]["content"]
            or ""
            for it in items
        ]
    finally:
        llm.close()


def verify_adapter(base: Path, adapter: Path, evalset: EvalSet, items: list[EvalItem], system_role: bool,
                   *, max_tokens: int = 48, prompt: PromptSpec | None = None) -> VerifyResult:
    """Load the adapter the way the server will (llama.cpp, Q4 base + `lora_path`) and answer a few training
    items with and without it, unconstrained and greedy: the answers must change, toward the expected answer."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return VerifyResult(skipped="llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
    without = _answers(Llama, base, None, evalset, items, system_role, max_tokens, prompt)
    with_adapter = _answers(Llama, base, adapter, evalset, items, system_role, max_tokens, prompt)
    res = VerifyResult()
    for it, b, a in zip(items, without, with_adapter, strict=True):
        res.rows.append({"item_id": it.id, "expected": json.dumps(it.expected, ensure_ascii=False), "base": b,
                         "adapter": a, "base_correct": _matches(b, it.expected),
                         "adapter_correct": _matches(a, it.expected)})
    return res


def print_verify(res: VerifyResult, echo: Out) -> None:
    if res.skipped:
        echo(f"verify      skipped: {res.skipped}")
        return
    for r in res.rows:
        echo(f"verify      {r['item_id']}: expected {r['expected']}")
        echo(f"              base:    {r['base'].strip()[:120]!r}")
        echo(f"              adapter: {r['adapter'].strip()[:120]!r}")
    echo(f"verify      llama.cpp loads the adapter; answers {'changed' if res.changed else 'DID NOT change'}"
         f"; exact match on {res.adapter_correct}/{len(res.rows)} training items with it, "
         f"{res.base_correct}/{len(res.rows)} without")
