"""Fine-tuning data and OpenAI jobs: export the train split, validate it against OpenAI's rules, price it,
upload it, follow the job, and save the resulting model id where the config's fine-tuned model reads it.

Training examples come from `render_training_example`, the very renderer the fine-tuned variant uses for
its eval prompts, so training and evaluation cannot drift apart. The held-out split never goes into a
training file: train items that repeat a test item are dropped, and the written file is checked again.

Token counts are *estimates*: OpenAI's tokenizer (tiktoken) downloads its BPE file at run time and fails
offline, so the harness either calibrates tokens-per-character from a run's measured `usage`, or falls
back to chars/4 plus 4 tokens per message, and says which it used.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from harness.config import ModelConfig, RunConfig, VariantConfig, api_key_for
from harness.errors import HarnessError
from harness.evalset import EvalSet
from harness.types import EvalItem, Message
from harness.variants import render_training_example

# OpenAI's published limits for chat fine-tuning data.
MIN_EXAMPLES = 10
RECOMMENDED_EXAMPLES = 50
MAX_FILE_BYTES = 512 * 1024 * 1024
# Per-example token limit. OpenAI lists 65,536 training tokens per example for gpt-4o-mini and gpt-4o
# (more for some newer models); 65,536 is used for every base model as the conservative bound.
DEFAULT_CONTEXT_LIMIT = 65_536
CONTEXT_LIMITS = {"gpt-4o-mini": 65_536, "gpt-4o": 65_536, "gpt-4.1-mini": 65_536, "gpt-4.1-nano": 65_536,
                  "gpt-4.1": 65_536}
MAX_SUFFIX_CHARS = 64
ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "function_call", "refusal"}
LINE_KEYS = {"messages", "tools", "functions", "parallel_tool_calls"}
TERMINAL = ("succeeded", "failed", "cancelled")
MAX_REPORTED_PROBLEMS = 20

Out = Callable[[str], None]


def _print(msg: str) -> None:
    print(msg, flush=True)


# -- which variant, which items -------------------------------------------------------------------------------


def pick_variant(cfg: RunConfig, name: str | None = None,
                 want: Literal["remote", "local"] | None = None) -> VariantConfig:
    """The fine-tuned variant to train for: --variant, else `finetune.variant`, else the first fine_tuned
    variant on the wanted kind of model (OpenAI jobs need a remote one, local LoRA a `provider: local` one)."""
    chosen = name or cfg.finetune.variant
    if chosen:
        try:
            v = cfg.variant(chosen)
        except KeyError:
            known = ", ".join(x.name for x in cfg.variants)
            raise HarnessError(f"variant {chosen!r} is not in the config (variants: {known})") from None
        if v.kind != "fine_tuned":
            raise HarnessError(f"variant {chosen!r} is kind {v.kind}; training data is built for a fine_tuned variant")
    else:
        ft = [v for v in cfg.variants if v.kind == "fine_tuned"]
        if not ft:
            raise HarnessError(
                "the config has no fine_tuned variant; add one, e.g. under variants: "
                "`- {name: fine-tuned, kind: fine_tuned, model: my-ft}` with models.my-ft.model_file "
                "(OpenAI) or models.my-ft.lora (provider: local)"
            )
        if want is not None:
            matching = [v for v in ft if (cfg.models[v.model].provider == "local") == (want == "local")]
            v = matching[0] if matching else ft[0]
        else:
            remote = [v for v in ft if cfg.models[v.model].provider != "local"]
            v = (remote or ft)[0]
    provider = cfg.models[v.model].provider
    if want == "local" and provider != "local":
        raise HarnessError(f"variant {v.name!r} uses model {v.model!r} (provider {provider}); `finetune local` "
                           f"trains a LoRA for a provider: local model; use `harness finetune openai` instead")
    if want == "remote" and provider == "local":
        raise HarnessError(f"variant {v.name!r} uses a local model ({v.model!r}); `finetune openai` needs an OpenAI "
                           f"model; use `harness finetune local` instead")
    return v


def normalise(text: str) -> str:
    """Case and whitespace do not make a test item a different item."""
    return " ".join(text.lower().split())


@dataclass
class TrainingSplit:
    train: list[EvalItem]
    validation: list[EvalItem]
    # train item id -> the test item id it repeats (dropped, so the held-out split stays held out)
    excluded: dict[str, str] = field(default_factory=dict)


def training_items(evalset: EvalSet, *, seed: int, validation_share: float = 0.0,
                   max_items: int | None = None) -> TrainingSplit:
    """The train split minus anything that repeats a test item, optionally sampled and split off a
    validation share; deterministic per seed so a re-run trains on the same data."""
    if not evalset.train:
        raise HarnessError(f"{evalset.path}: no train.jsonl items; fine-tuning data comes from the train split")
    test_ids = {t.id for t in evalset.test}
    test_texts = [(t.id, normalise(evalset.render_input(t))) for t in evalset.test]
    excluded: dict[str, str] = {}
    kept: list[EvalItem] = []
    for item in evalset.train:
        if item.id in test_ids:
            excluded[item.id] = item.id
            continue
        text = normalise(evalset.render_input(item))
        hit = next((tid for tid, tt in test_texts if tt and tt in text), None)
        if hit is not None:
            excluded[item.id] = hit
            continue
        kept.append(item)
    rng = random.Random(seed)
    if max_items is not None and len(kept) > max_items:
        kept = sorted(rng.sample(kept, max_items), key=lambda i: evalset.train.index(i))
    validation: list[EvalItem] = []
    if validation_share > 0:
        order = list(range(len(kept)))
        rng.shuffle(order)
        n_val = max(1, round(len(kept) * validation_share))
        val_idx = set(order[:n_val])
        validation = [it for i, it in enumerate(kept) if i in val_idx]
        kept = [it for i, it in enumerate(kept) if i not in val_idx]
    return TrainingSplit(kept, validation, excluded)


def assert_no_test_items(evalset: EvalSet, ids: list[str], path: Path) -> None:
    """The guard on the written file: no test id among the items, no test input text in any line.

    It re-reads the file rather than trusting the in-memory list, so it checks what would be uploaded.
    """
    test_ids = {t.id for t in evalset.test}
    clash = sorted(set(ids) & test_ids)
    if clash:
        raise HarnessError(f"{path}: held-out test items in the training data: {', '.join(clash[:5])} (not written)")
    test_texts = [(t.id, normalise(evalset.render_input(t))) for t in evalset.test]
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                messages = json.loads(line).get("messages", [])
                text = normalise("\n".join(str(m.get("content", "")) for m in messages))
            except (ValueError, AttributeError):
                continue  # validate_training_file reports malformed lines
            hit = next((tid for tid, tt in test_texts if tt and tt in text), None)
            if hit is not None:
                raise HarnessError(f"{path}:{lineno}: contains the input of held-out test item {hit!r}; "
                                   f"remove the duplicate from train.jsonl")


# -- token estimates and cost ---------------------------------------------------------------------------------


@dataclass
class TokenEstimator:
    """Estimated tokens of a chat example. `tokens_per_char` set = calibrated from measured usage."""

    tokens_per_char: float | None = None
    per_message: int = 4
    method: str = "chars/4 + 4 per message (rough estimate; OpenAI's tokenizer is not used offline)"

    def count(self, messages: list[Any]) -> int:
        chars = [len(m.get("content") or "") if isinstance(m, dict) and isinstance(m.get("content"), str) else 0
                 for m in messages]
        if self.tokens_per_char is not None:
            return math.ceil(sum(chars) * self.tokens_per_char)
        return sum(math.ceil(c / 4) + self.per_message for c in chars)


def calibrate_from_run(run_dir: Path) -> TokenEstimator:
    """Tokens per character measured on a run's own prompts: sum(prompt_tokens) / sum(message chars).

    The fine-tuned variant's records come first (same prompts as the training data), else the baseline's.
    The ratio includes the per-message overhead, so no extra per-message tokens are added.
    """
    from harness.runner import load_run_config, read_records

    records = read_records(run_dir / "records.jsonl")
    if not records:
        raise HarnessError(f"--calibrate-from {run_dir}: no records.jsonl with records in it")
    run_cfg = load_run_config(run_dir)
    kinds = {v.name: v.kind for v in run_cfg.variants}
    for kind in ("fine_tuned", "baseline"):
        usable = [r for r in records if kinds.get(r.variant) == kind and r.usage is not None
                  and r.usage.prompt_tokens > 0 and r.error is None]
        if usable:
            tokens = sum(r.usage.prompt_tokens for r in usable if r.usage is not None)
            chars = sum(len(m.get("content") or "") for r in usable for m in r.request.get("messages", []))
            if chars == 0:
                continue
            models = sorted({r.model for r in usable})
            providers = {run_cfg.models[m].provider for m in models if m in run_cfg.models}
            note = "" if providers <= {"openai"} else (
                "; note: measured on a non-OpenAI model whose tokenizer differs from OpenAI's")
            variant = usable[0].variant
            return TokenEstimator(
                tokens_per_char=tokens / chars, per_message=0,
                method=(f"calibrated from {run_dir} ({variant}, {len(usable)} calls on "
                        f"{', '.join(sorted({r.model_id for r in usable}))}): {tokens / chars:.4f} tokens/char{note}"),
            )
    raise HarnessError(f"--calibrate-from {run_dir}: no successful fine_tuned or baseline records with usage")


@dataclass
class CostEstimate:
    tokens: int
    epochs: int
    price_per_1m: float | None
    source: str

    @property
    def usd(self) -> float | None:
        if self.price_per_1m is None:
            return None
        return self.tokens * self.epochs * self.price_per_1m / 1_000_000

    def describe(self) -> str:
        billed = f"{self.tokens:,} tokens x {self.epochs} epochs = {self.tokens * self.epochs:,} training tokens"
        if self.usd is None:
            return f"{billed}; training price unknown ({self.source}); add fine_tuned.training to a pricing file"
        return f"{billed} x ${self.price_per_1m:.2f}/1M = ${self.usd:,.2f} ({self.source})"


def training_price(base_model: str, pricing_path: Path | None) -> tuple[float | None, str]:
    """The price table keeps the training rate under the base model's `fine_tuned.training`; looking up a
    fine-tuned id of that base (`ft:<base>:...`) is how the table resolves fine-tuned rates."""
    from harness.pricing import PriceTable

    price = PriceTable.load(pricing_path).lookup(f"ft:{base_model}:training-estimate")
    if not price.known or price.training is None:
        return None, f"no training price for {base_model}"
    return price.training, price.source


def context_limit(base_model: str) -> int:
    for name in sorted(CONTEXT_LIMITS, key=len, reverse=True):
        if base_model == name or base_model.startswith(name + "-"):
            return CONTEXT_LIMITS[name]
    return DEFAULT_CONTEXT_LIMIT


# -- validation -----------------------------------------------------------------------------------------------


@dataclass
class FileReport:
    """What OpenAI would say about a training file, found before uploading it."""

    path: Path
    examples: int = 0
    bytes: int = 0
    tokens: int = 0
    max_tokens: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _check_message(m: Any, i: int) -> list[str]:
    if not isinstance(m, dict):
        return [f"messages[{i}] is not an object"]
    problems = []
    unknown = sorted(set(m) - MESSAGE_KEYS)
    if unknown:
        problems.append(f"messages[{i}] has unrecognised key(s) {', '.join(unknown)}")
    role = m.get("role")
    if role not in ROLES:
        problems.append(f"messages[{i}].role is {role!r}; must be one of {', '.join(ROLES)}")
    content = m.get("content")
    if role == "assistant" and (m.get("tool_calls") or m.get("function_call")) and content is None:
        return problems
    if not isinstance(content, str):
        problems.append(f"messages[{i}].content must be a string (got {type(content).__name__})")
    elif not content.strip():
        problems.append(f"messages[{i}].content is empty")
    if "weight" in m and m["weight"] not in (0, 1):
        problems.append(f"messages[{i}].weight must be 0 or 1")
    return problems


def validate_training_file(path: Path, estimator: TokenEstimator, *, limit: int = DEFAULT_CONTEXT_LIMIT,
                           min_examples: int = MIN_EXAMPLES, role: str = "training") -> FileReport:
    """Check every line against OpenAI's chat fine-tuning format; problems carry the line number."""
    report = FileReport(path=path)
    if not path.exists():
        report.errors.append(f"{path}: file not found")
        return report
    report.bytes = path.stat().st_size
    if report.bytes > MAX_FILE_BYTES:
        report.errors.append(f"{path}: {report.bytes / 1024**2:,.0f} MB is over OpenAI's 512 MB file limit")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            where = f"{path}:{lineno}"
            if not line.strip():
                report.errors.append(f"{where}: empty line (every line must be one JSON example)")
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                report.errors.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            report.examples += 1
            if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
                report.errors.append(f'{where}: each line must be {{"messages": [...]}}')
                continue
            unknown = sorted(set(row) - LINE_KEYS)
            if unknown:
                report.errors.append(f"{where}: unrecognised key(s) {', '.join(unknown)}")
            messages = row["messages"]
            if not messages:
                report.errors.append(f"{where}: messages is empty")
                continue
            for i, m in enumerate(messages):
                report.errors.extend(f"{where}: {p}" for p in _check_message(m, i))
            if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
                report.errors.append(f"{where}: no assistant message (the answer the model should learn)")
            n = estimator.count(messages)
            report.tokens += n
            report.max_tokens = max(report.max_tokens, n)
            if n > limit:
                report.errors.append(f"{where}: about {n:,} tokens, over the {limit:,}-token limit per example")
    if report.examples < min_examples:
        report.errors.append(f"{path}: {report.examples} {role} examples; OpenAI needs at least {min_examples}")
    elif role == "training" and report.examples < RECOMMENDED_EXAMPLES:
        report.warnings.append(f"{path}: only {report.examples} examples; OpenAI sees clear gains from 50-100 "
                               f"good examples")
    return report


def raise_if_invalid(*reports: FileReport) -> None:
    errors = [e for r in reports for e in r.errors]
    if errors:
        shown = errors[:MAX_REPORTED_PROBLEMS]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise HarnessError("the training data breaks OpenAI's fine-tuning rules:\n  " + "\n  ".join(shown) + more)


# -- export ---------------------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    variant: VariantConfig
    train_path: Path
    validation_path: Path | None
    train_report: FileReport
    validation_report: FileReport | None
    split: TrainingSplit
    estimator: TokenEstimator
    cost: CostEstimate
    system_role: bool
    limit: int


def write_jsonl(path: Path, examples: list[list[Message]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for messages in examples:
            fh.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def default_paths(cfg: RunConfig, out: Path | None) -> tuple[Path, Path]:
    train = out or cfg.finetune.output_dir / f"{cfg.name}-train.jsonl"
    return train, train.with_name(f"{train.stem}-validation{train.suffix or '.jsonl'}")


def export(cfg: RunConfig, evalset: EvalSet, *, out: Path | None = None, variant: str | None = None,
           calibrate_from: Path | None = None, seed: int | None = None,
           want: Literal["remote", "local"] | None = None) -> ExportResult:
    """Render the train split with the fine-tuned variant's renderer, write it, and validate the file."""
    v = pick_variant(cfg, variant, want)
    model = cfg.models[v.model]
    system_role = model.effective_system_role
    ft = cfg.finetune
    split = training_items(evalset, seed=ft.seed if seed is None else seed, validation_share=ft.validation_share,
                           max_items=ft.max_train_items)
    train_path, val_path = default_paths(cfg, out)
    write_jsonl(train_path, [render_training_example(evalset, it, system_role=system_role) for it in split.train])
    assert_no_test_items(evalset, [i.id for i in split.train], train_path)
    estimator = calibrate_from_run(calibrate_from) if calibrate_from else TokenEstimator()
    limit = context_limit(ft.base_model)
    train_report = validate_training_file(train_path, estimator, limit=limit)
    val_report = None
    if split.validation:
        write_jsonl(val_path, [render_training_example(evalset, it, system_role=system_role)
                               for it in split.validation])
        assert_no_test_items(evalset, [i.id for i in split.validation], val_path)
        val_report = validate_training_file(val_path, estimator, limit=limit, min_examples=1, role="validation")
    else:
        val_path.unlink(missing_ok=True)  # a stale one from an earlier export must not be uploaded
    price, source = training_price(ft.base_model, cfg.pricing)
    cost = CostEstimate(train_report.tokens, ft.epochs, price, source)
    return ExportResult(v, train_path, val_path if split.validation else None, train_report, val_report, split,
                        estimator, cost, system_role, limit)


def print_export(res: ExportResult, evalset: EvalSet, out: Out = _print) -> None:
    r = res.train_report
    layout = "system + user" if res.system_role else "instructions folded into the first user turn"
    out(f"variant     {res.variant.name} (model {res.variant.model}; prompt: {layout})")
    out(f"training    {res.train_path}: {r.examples} examples, {r.bytes / 1024:,.1f} KB, "
        f"~{r.tokens:,} tokens (max ~{r.max_tokens:,} per example)")
    if res.validation_report is not None:
        vr = res.validation_report
        out(f"validation  {res.validation_path}: {vr.examples} examples, ~{vr.tokens:,} tokens")
    out(f"tokens      {res.estimator.method}")
    out(f"held out    none of the {len(evalset.test)} test items is in the file (checked by id and by "
        f"normalised input text)")
    if res.split.excluded:
        pairs = ", ".join(f"{tr}~{te}" for tr, te in list(res.split.excluded.items())[:8])
        out(f"excluded    {len(res.split.excluded)} train item(s) that repeat a test item: {pairs}")
    out(f"cost        training ~ {res.cost.describe()}")
    for w in r.warnings + (res.validation_report.warnings if res.validation_report else []):
        out(f"warning     {w}")
    reports = [r] + ([res.validation_report] if res.validation_report else [])
    if all(x.ok for x in reports):
        out("check       ok: valid OpenAI chat fine-tuning data (roles, non-empty content, an assistant message "
            f"per example, >= {MIN_EXAMPLES} examples, <= {res.limit:,} tokens per example, <= 512 MB)")


# -- OpenAI jobs ----------------------------------------------------------------------------------------------


def openai_client(model: ModelConfig, model_name: str) -> Any:
    """A sync client for the files and fine-tuning endpoints; the key comes from the model's env var only."""
    import openai

    env = model.effective_api_key_env
    key = api_key_for(model)
    if env and not key:
        raise HarnessError(f"models.{model_name}: environment variable {env} is not set; export it (the key is read "
                           f"from the environment only) or set api_key_env to the variable that holds it")
    return openai.OpenAI(api_key=key or "not-needed", base_url=model.base_url, max_retries=3,
                         timeout=max(model.timeout_s, 60.0))


def save_model_id(cfg: RunConfig, v: VariantConfig, model_id: str, config_path: str,
                  out: Out = _print) -> Path:
    """Write the id where the fine-tuned model's `model_file` points, so the next run picks it up."""
    m = cfg.models[v.model]
    path = m.model_file or cfg.finetune.output_dir / "openai-model-id.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(model_id + "\n", encoding="utf-8")
    os.replace(tmp, path)
    out(f"model id    {model_id} -> {path}")
    if m.model_file is None:
        out(f"config      add to models.{v.model} in {config_path} so variant {v.name!r} uses it"
            + (" (and remove its `model:` line)" if m.model else "") + ":")
        out(f"              model_file: {path}")
    return path


def _ts(epoch: int | float | None) -> str:
    if not epoch:
        return "        "
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


def follow_job(client: Any, job_id: str, *, poll_s: float = 10.0, progress: bool = True,
               out: Out = _print, sleep: Callable[[float], None] | None = None) -> Any:
    """Poll until the job ends, showing a progress bar (steps from the metrics events) and every new
    event once. Ctrl-C stops following only; the job keeps running at OpenAI."""
    from tqdm import tqdm

    sleep = sleep or time.sleep
    seen: set[str] = set()
    bar = tqdm(total=None, unit="step", desc="queued", file=sys.stderr, disable=not progress, dynamic_ncols=True,
               mininterval=0.0)
    try:
        while True:
            job = client.fine_tuning.jobs.retrieve(job_id)
            events = list(client.fine_tuning.jobs.list_events(job_id, limit=100).data)
            for ev in reversed(events):  # the API lists newest first
                if ev.id in seen:
                    continue
                seen.add(ev.id)
                data = ev.data if isinstance(ev.data, dict) else {}
                if ev.type == "metrics" and "step" in data:
                    if data.get("total_steps"):
                        bar.total = int(data["total_steps"])
                    bar.n = int(data["step"])
                    if data.get("train_loss") is not None:
                        bar.set_postfix(loss=f"{float(data['train_loss']):.4f}", refresh=False)
                    bar.refresh()
                    continue
                line = f"  {_ts(ev.created_at)} {ev.level:<5} {ev.message}"
                if progress:
                    tqdm.write(line, file=sys.stdout)
                else:
                    out(line)
            bar.set_description(job.status)
            bar.refresh()
            if job.status in TERMINAL:
                return job
            sleep(poll_s)
    finally:
        bar.close()


@dataclass
class JobResult:
    job_id: str
    status: str
    model_id: str | None
    model_file: Path | None
    trained_tokens: int | None


def job_state_path(cfg: RunConfig) -> Path:
    return cfg.finetune.output_dir / f"{cfg.name}-openai-job.json"


def _write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def run_openai(cfg: RunConfig, evalset: EvalSet, *, config_path: str, variant: str | None = None,
               training_file: Path | None = None, calibrate_from: Path | None = None, seed: int | None = None,
               job_id: str | None = None, wait: bool = True, poll_s: float = 10.0, progress: bool = True,
               out: Out = _print) -> JobResult:
    """Export (or take) the data, upload it, create the job, follow it, save the model id.

    With `job_id` it only follows an existing job (after Ctrl-C or --no-wait) and saves its result.
    """
    v = pick_variant(cfg, variant, "remote")
    model = cfg.models[v.model]
    ft = cfg.finetune
    client = openai_client(model, v.model)
    state_path = job_state_path(cfg)
    if job_id is None:
        seed = ft.seed if seed is None else seed
        if ft.suffix is not None and len(ft.suffix) > MAX_SUFFIX_CHARS:
            raise HarnessError(f"finetune.suffix: {len(ft.suffix)} characters; OpenAI allows at most {MAX_SUFFIX_CHARS}")
        if training_file is None:
            res = export(cfg, evalset, variant=v.name, calibrate_from=calibrate_from, seed=seed, want="remote")
            print_export(res, evalset, out)
            reports = [res.train_report] + ([res.validation_report] if res.validation_report else [])
            raise_if_invalid(*reports)
            train_path, val_path = res.train_path, res.validation_path
        else:
            estimator = calibrate_from_run(calibrate_from) if calibrate_from else TokenEstimator()
            report = validate_training_file(training_file, estimator, limit=context_limit(ft.base_model))
            raise_if_invalid(report)
            assert_no_test_items(evalset, [], training_file)
            price, source = training_price(ft.base_model, cfg.pricing)
            out(f"training    {training_file}: {report.examples} examples, ~{report.tokens:,} tokens "
                f"({estimator.method})")
            out(f"cost        training ~ {CostEstimate(report.tokens, ft.epochs, price, source).describe()}")
            train_path, val_path = training_file, None
        with train_path.open("rb") as fh:
            train_file = client.files.create(file=(train_path.name, fh), purpose="fine-tune")
        out(f"uploaded    {train_path.name} as {train_file.id}")
        val_id = None
        if val_path is not None:
            with val_path.open("rb") as fh:
                val_id = client.files.create(file=(val_path.name, fh), purpose="fine-tune").id
            out(f"uploaded    {val_path.name} as {val_id}")
        kwargs: dict[str, Any] = {
            "model": ft.base_model, "training_file": train_file.id, "seed": seed,
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": ft.epochs}}},
        }
        if val_id:
            kwargs["validation_file"] = val_id
        if ft.suffix:
            kwargs["suffix"] = ft.suffix
        job = client.fine_tuning.jobs.create(**kwargs)
        job_id = job.id
        _write_state(state_path, {"job_id": job.id, "status": job.status, "base_model": ft.base_model,
                                  "epochs": ft.epochs, "seed": seed, "suffix": ft.suffix, "variant": v.name,
                                  "training_file": {"path": str(train_path), "id": train_file.id},
                                  "validation_file": {"path": str(val_path), "id": val_id} if val_id else None,
                                  "created_at": datetime.now(UTC).isoformat(timespec="seconds")})
        out(f"job         {job.id} created ({ft.base_model}, {ft.epochs} epochs, seed {seed}"
            + (f", suffix {ft.suffix}" if ft.suffix else "") + f"); state in {state_path}")
    if not wait:
        out(f"follow it   harness finetune openai {config_path} --job {job_id}")
        return JobResult(job_id, "created", None, None, None)
    try:
        job = follow_job(client, job_id, poll_s=poll_s, progress=progress, out=out)
    except KeyboardInterrupt:
        print(f"\nstopped following; job {job_id} keeps running at OpenAI. Follow it again (and save its model "
              f"id) with: harness finetune openai {config_path} --job {job_id}", file=sys.stderr, flush=True)
        raise
    state = json.loads(state_path.read_text("utf-8")) if state_path.exists() else {"job_id": job_id}
    state.update({"status": job.status, "fine_tuned_model": job.fine_tuned_model,
                  "trained_tokens": job.trained_tokens, "finished_at": job.finished_at})
    if job.status != "succeeded":
        err = job.error
        detail = ""
        if err is not None:
            detail = ": " + " ".join(x for x in (f"[{err.code}]" if err.code else "", err.message or "",
                                                 f"(param {err.param})" if err.param else "") if x)
        state["error"] = detail.lstrip(": ")
        _write_state(state_path, state)
        raise HarnessError(f"fine-tuning job {job_id} {job.status}{detail}")
    if not job.fine_tuned_model:
        raise HarnessError(f"fine-tuning job {job_id} succeeded but returned no fine_tuned_model")
    _write_state(state_path, state)
    path = save_model_id(cfg, v, job.fine_tuned_model, config_path, out)
    if job.trained_tokens:
        price, source = training_price(ft.base_model, cfg.pricing)
        cost = f" = ${job.trained_tokens * price / 1e6:,.2f} at ${price:.2f}/1M" if price is not None else ""
        out(f"trained     {job.trained_tokens:,} billed training tokens{cost}")
    out(f"next        harness run {config_path} --variants {v.name}")
    return JobResult(job_id, job.status, job.fine_tuned_model, path, job.trained_tokens)
