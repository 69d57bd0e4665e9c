"""LoRA fine-tuning of the embedded Gemma 3 270M, written as a GGUF adapter that llama.cpp loads over the Q4 base.

Why these choices:
- The base comes from the same GGUF the local server runs (transformers dequantises it), so the adapter is
  trained against exactly the weights it will be applied to; nothing is downloaded.
- The training text is what llama-cpp-python's `gemma` chat format sends for the same messages (system
  messages dropped, `<start_of_turn>user/model` turns), and the messages come from the fine-tuned variant's own
  renderer, so the model is trained on the very prompts it is evaluated on.
- The loss covers only the answer tokens (and the `<end_of_turn>` that ends them), not the prompt.
- Every example starts with the same instructions (~300 of ~360 tokens in the demo). Each step runs that
  shared prefix once and the per-example rest against its cached keys/values (gradients flow through the
  cache), which gives the same loss and gradients as the plain batch at about a third of the compute; and the
  262k-word output layer is applied only at answer positions. That is what makes a 2-core CPU enough.
- torch, transformers, peft and gguf are an optional extra, imported only here and only when asked for.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.errors import HarnessError
from harness.evalset import EvalSet
from harness.finetune import pick_variant, training_items
from harness.types import EvalItem, Message
from harness.variants import render_prompt, render_training_example

INSTALL_HINT = "pip install torch==2.13.0 && pip install -e '.[finetune]'"
DEFAULT_ADAPTER_NAME = "gemma-3-270m-lora.gguf"
# PEFT module name -> llama.cpp tensor name (blk.N.<this>.weight)
TARGETS = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}
MAX_SEQ_TOKENS = 2048  # the local server's n_ctx: a longer example could never be answered there anyway
END_OF_TURN = "<end_of_turn>"
VERIFY_EXAMPLES = 3

Out = Callable[[str], None]


def _print(msg: str) -> None:
    print(msg, flush=True)


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


# -- the training text ----------------------------------------------------------------------------------------


def gemma_prompt(messages: list[Message]) -> str:
    """llama-cpp-python's `format_gemma`, reproduced: system messages dropped, a turn with empty content
    written as its bare role header, and the model's turn opened at the end."""
    roles = {"user": "<start_of_turn>user\n", "assistant": "<start_of_turn>model\n"}
    text = ""
    for m in messages:
        role = roles.get(m["role"])
        if role is None:
            continue
        text += (role + m["content"] + f"{END_OF_TURN}\n") if m["content"] else role
    return text + roles["assistant"]


def training_text(messages: list[Message]) -> tuple[str, str]:
    """(prompt, answer): the prompt exactly as the server would send it, the answer ended the way the
    model must learn to end it (llama.cpp stops on `<end_of_turn>`)."""
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("a training example must end with the assistant's answer")
    return gemma_prompt(messages[:-1]), messages[-1]["content"] + END_OF_TURN


@dataclass
class Example:
    item_id: str
    ids: list[int]
    n_prompt: int  # ids[:n_prompt] is the prompt; the rest is the answer the loss is taken on


def tokenize(tokenizer: Any, items: list[EvalItem], evalset: EvalSet, system_role: bool,
             out: Out) -> list[Example]:
    """Prompt and answer are tokenised apart, as at inference (the prompt is tokenised on its own and the
    answer is generated after it), with BOS on the prompt as llama.cpp adds it."""
    examples: list[Example] = []
    too_long = []
    for item in items:
        prompt, answer = training_text(render_training_example(evalset, item, system_role=system_role))
        p_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        a_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if len(p_ids) + len(a_ids) > MAX_SEQ_TOKENS:
            too_long.append(item.id)
            continue
        examples.append(Example(item.id, p_ids + a_ids, len(p_ids)))
    if too_long:
        out(f"skipped     {len(too_long)} example(s) over {MAX_SEQ_TOKENS} tokens: {', '.join(too_long[:5])}")
    return examples


def shared_prefix_len(examples: list[Example]) -> int:
    """Tokens every example starts with, compared on token ids (so the split cannot change tokenisation),
    and short of every prompt's end so each answer's first token is predicted inside the per-example part."""
    if not examples:
        return 0
    first = examples[0].ids
    n = min(e.n_prompt for e in examples) - 1
    p = 0
    while p < n and all(e.ids[p] == first[p] for e in examples):
        p += 1
    return p


def batch_plan(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Example indices per step: reshuffled every epoch, seeded, the last short batch of an epoch kept."""
    rng = random.Random(seed)
    batches: list[list[int]] = []
    while len(batches) < steps:
        order = list(range(n))
        rng.shuffle(order)
        batches += [order[i:i + batch_size] for i in range(0, n, batch_size)]
    return batches[:steps]


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


def write_adapter(path: Path, tensors: dict[str, Any], *, arch: str, alpha: float,
                  shapes: dict[str, tuple[int, ...]]) -> None:
    """A GGUF LoRA adapter as llama.cpp reads it (general.type=adapter, adapter.type=lora,
    adapter.lora.alpha; scale = alpha / rank), checked against the base's tensor shapes before writing."""
    import gguf

    for name, arr in tensors.items():
        base = name.rsplit(".", 1)[0]
        if base not in shapes:
            raise HarnessError(f"adapter tensor {name}: the base model has no tensor {base}")
        n_in, n_out = shapes[base][0], shapes[base][1]
        want = (arr.shape[0], n_in) if name.endswith(".lora_a") else (n_out, arr.shape[1])
        if tuple(arr.shape) != want:
            raise HarnessError(f"adapter tensor {name}: shape {tuple(arr.shape)}, expected {want}")
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


def verify_adapter(base: Path, adapter: Path, evalset: EvalSet, items: list[EvalItem], system_role: bool,
                   *, max_tokens: int = 48) -> VerifyResult:
    """Load the adapter the way the server will (llama.cpp, Q4 base + `lora_path`) and answer a few training
    items with and without it, unconstrained and greedy: the answers must change, toward the expected JSON."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return VerifyResult(skipped="llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
    threads = os.cpu_count() or 1
    answers: dict[str, list[str]] = {}
    for label, lora in (("base", None), ("adapter", adapter)):
        try:
            with _quiet_native_stderr():
                llm = Llama(model_path=str(base), lora_path=str(lora) if lora else None, n_ctx=MAX_SEQ_TOKENS,
                            chat_format="gemma", n_threads=threads, n_threads_batch=threads, verbose=False, seed=0)
        except (ValueError, RuntimeError) as exc:
            raise HarnessError(f"llama.cpp could not load {lora or base}: {exc}") from exc
        try:
            answers[label] = [
                llm.create_chat_completion(render_prompt(evalset, it.input, system_role=system_role),
                                           temperature=0.0, max_tokens=max_tokens)["choices"][0]["message"]["content"]
                or ""
                for it in items
            ]
        finally:
            llm.close()
    res = VerifyResult()
    for it, b, a in zip(items, answers["base"], answers["adapter"], strict=True):
        res.rows.append({"item_id": it.id, "expected": json.dumps(it.expected, ensure_ascii=False), "base": b,
                         "adapter": a, "base_correct": _parses_to(b, it.expected),
                         "adapter_correct": _parses_to(a, it.expected)})
    return res


# -- the whole job --------------------------------------------------------------------------------------------


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


def _steps(n_examples: int, batch_size: int, epochs: float, max_steps: int | None) -> int:
    """`max_steps` when set (it wins over epochs, as in transformers' Trainer), else `local_epochs` worth."""
    if max_steps:
        return max_steps
    return max(1, math.ceil(epochs * n_examples / batch_size))


def train_local(cfg: RunConfig, evalset: EvalSet, *, config_path: str = "CONFIG", variant: str | None = None,
                out: Path | None = None, max_steps: int | None = None, seed: int | None = None,
                verify: bool = True, progress: bool = True, echo: Out = _print) -> LocalResult:
    """Train a LoRA on the train split for the config's local fine-tuned variant and write its GGUF adapter."""
    t_start = time.perf_counter()
    mods = require_packages()
    torch = mods["torch"]
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    from harness import local

    ft = cfg.finetune
    v = pick_variant(cfg, variant, "local")
    model_cfg = cfg.models[v.model]
    base_gguf = model_cfg.gguf or local.ensure_gguf()
    adapter = out or model_cfg.lora or ft.output_dir / DEFAULT_ADAPTER_NAME
    seed = ft.seed if seed is None else seed
    max_steps = max_steps or ft.max_steps
    system_role = model_cfg.effective_system_role
    if system_role:
        echo("warning     the gemma chat format drops system messages, so the instructions would be lost; "
             f"set models.{v.model}.system_role: false (training drops them too, to match)")
    split = training_items(evalset, seed=seed, validation_share=ft.validation_share, max_items=ft.max_train_items)
    if len(split.train) < 1:
        raise HarnessError(f"{evalset.path}: no training items left after removing test duplicates")
    arch, shapes = base_tensors(base_gguf)
    if arch != "gemma3":
        raise HarnessError(f"{base_gguf}: architecture {arch}; local fine-tuning supports gemma3 (Gemma 3 270M)")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)  # LoRA's initial A matrices; the batch order has its own seeded Random
    echo(f"variant     {v.name} (model {v.model}); base {base_gguf}")
    echo(f"device      {device}" + (f" ({torch.cuda.get_device_name(0)})" if device == "cuda" else
                                    f" ({torch.get_num_threads()} threads)"))
    t0 = time.perf_counter()
    tokenizer, model = load_base(base_gguf, torch, device)
    echo(f"loaded      base model from GGUF in {time.perf_counter() - t0:.0f} s")

    train = tokenize(tokenizer, split.train, evalset, system_role, echo)
    val = tokenize(tokenizer, split.validation, evalset, system_role, echo) if split.validation else []
    if not train:
        raise HarnessError("no training example fits the model's context")
    prefix = shared_prefix_len(train + val)
    steps = _steps(len(train), ft.batch_size, ft.local_epochs, max_steps)
    plan = batch_plan(len(train), ft.batch_size, steps, seed)
    mean_len = sum(len(e.ids) for e in train) / len(train)
    echo(f"data        {len(train)} examples (~{mean_len:.0f} tokens, {prefix} shared)"
         + (f", {len(val)} validation" if val else "") + (f"; {len(split.excluded)} train item(s) repeating a "
                                                          f"test item left out" if split.excluded else ""))
    echo(f"training    {steps} steps x batch {ft.batch_size} = {steps * ft.batch_size / len(train):.2f} epochs; "
         f"LoRA r={ft.lora_rank} alpha={ft.lora_alpha:g} on {', '.join(TARGETS)}; lr {ft.learning_rate:g}; "
         f"seed {seed}")

    lora = LoraConfig(r=ft.lora_rank, lora_alpha=ft.lora_alpha, lora_dropout=0.0, bias="none",
                      target_modules=list(TARGETS), task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # a transformers deprecation that peft triggers; not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=ft.learning_rate, weight_decay=0.0)
    warmup = max(1, steps // 10)

    def lr_factor(step: int) -> float:
        """Linear warm-up over the first tenth, then linear decay: stable with few steps."""
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    val_before = mean_loss(model, val, prefix, torch, device, ft.batch_size) if val else None

    losses: list[float] = []
    t_train = time.perf_counter()
    bar = tqdm(plan, desc="LoRA", unit="step", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        for idx in bar:
            loss = batch_loss(model, [train[i] for i in idx], prefix, torch, device)
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
    train_s = time.perf_counter() - t_train
    model.eval()
    val_after = mean_loss(model, val, prefix, torch, device, ft.batch_size) if val else None

    write_adapter(adapter, lora_tensors(model), arch=arch, alpha=ft.lora_alpha, shapes=shapes)
    first = sum(losses[:5]) / len(losses[:5])
    last = sum(losses[-5:]) / len(losses[-5:])
    echo(f"loss        {first:.3f} (first steps) -> {last:.3f} (last steps) on answer tokens; "
         f"{train_s / 60:.1f} min for {steps} steps ({train_s / steps:.1f} s/step)")
    if val_before is not None and val_after is not None:
        echo(f"validation  loss {val_before:.3f} -> {val_after:.3f} on {len(val)} held-back train items")
    echo(f"adapter     {adapter} ({adapter.stat().st_size / 1024:.0f} KB)")
    del model, optimizer
    result = LocalResult(adapter=adapter, steps=steps, examples=len(train), seconds=0.0, train_seconds=train_s,
                         first_loss=first, last_loss=last, device=device, losses=losses)

    if verify:
        picks = split.train[:VERIFY_EXAMPLES]
        res = verify_adapter(base_gguf, adapter, evalset, picks, system_role)
        result.verify = res
        if res.skipped:
            echo(f"verify      skipped: {res.skipped}")
        else:
            for r in res.rows:
                echo(f"verify      {r['item_id']}: expected {r['expected']}")
                echo(f"              base:    {r['base'].strip()[:120]!r}")
                echo(f"              adapter: {r['adapter'].strip()[:120]!r}")
            echo(f"verify      llama.cpp loads the adapter; answers {'changed' if res.changed else 'DID NOT change'}"
                 f"; exact JSON match on {res.adapter_correct}/{len(res.rows)} training items with it, "
                 f"{res.base_correct}/{len(res.rows)} without")
    result.seconds = time.perf_counter() - t_start
    meta = {
        "adapter": str(adapter), "base_gguf": str(base_gguf), "variant": v.name, "model": v.model,
        "evalset": {"path": str(evalset.path), "content_hash": evalset.content_hash},
        "train_items": len(train), "validation_items": len(val), "excluded_train_items": split.excluded,
        "settings": {**ft.model_dump(mode="json"), "seed": seed, "max_steps": max_steps, "steps": steps},
        "system_role": system_role, "device": device, "torch": torch.__version__,
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "first_loss": first, "last_loss": last, "losses": [round(x, 5) for x in losses],
        "validation_loss": {"before": val_before, "after": val_after} if val else None,
        "train_seconds": round(train_s, 1), "total_seconds": round(result.seconds, 1),
        "verify": asdict(result.verify) if result.verify else None,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    adapter.with_name(adapter.name + ".json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    echo(f"time        {result.seconds / 60:.1f} min in total ({device})")
    if model_cfg.lora is None or (out is not None and out != model_cfg.lora):
        echo(f"config      set models.{v.model}.lora: {adapter} in {config_path} so variant {v.name!r} serves it")
    echo(f"next        harness run {config_path} --variants {v.name}")
    return result
