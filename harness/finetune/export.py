"""`harness finetune export`: write the train split as OpenAI chat JSONL, check it, and say what it would cost.

Training examples come from `render_training_example`, the very renderer the fine-tuned variant uses for
its eval prompts, so training and evaluation cannot drift apart. The held-out split never goes into a
training file (see `harness.finetune.data`). `harness finetune openai` runs this same export before it uploads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config import RunConfig, VariantConfig
from harness.data.evalset import EvalSet
from harness.finetune.console import Out, print_line
from harness.finetune.data import (
    TrainingSplit,
    Want,
    assert_no_test_items,
    leakage_lines,
    pick_variant,
    training_items,
    write_jsonl,
)
from harness.finetune.estimates import CostEstimate, TokenEstimator, estimator_for, training_cost
from harness.finetune.openai_format import MIN_EXAMPLES, FileReport, context_limit, validate_training_file
from harness.prompts.variants import PromptSpec, prompt_of, render_training_example
from harness.records import EvalItem


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

    @property
    def reports(self) -> list[FileReport]:
        return [self.train_report] + ([self.validation_report] if self.validation_report else [])


def default_paths(cfg: RunConfig, out: Path | None) -> tuple[Path, Path]:
    train = out or cfg.finetune.output_dir / f"{cfg.name}-train.jsonl"
    return train, train.with_name(f"{train.stem}-validation{train.suffix or '.jsonl'}")


def _write_checked(path: Path, evalset: EvalSet, items: list[EvalItem], system_role: bool,
                   prompt: PromptSpec | None = None) -> None:
    """Render the items with the fine-tuned variant's renderer (its prompt overrides included), write them,
    and re-check the file for held-out items."""
    write_jsonl(path, [render_training_example(evalset, it, system_role=system_role, prompt=prompt) for it in items],
                tools=evalset.tools)
    assert_no_test_items(evalset, [i.id for i in items], path)


def export(cfg: RunConfig, evalset: EvalSet, *, out: Path | None = None, variant: str | None = None,
           calibrate_from: Path | None = None, seed: int | None = None, want: Want | None = None,
           keep_leaked: bool | None = None) -> ExportResult:
    """Render the train split with the fine-tuned variant's renderer, write it, and validate the file.
    Near-duplicates of test items are left out unless `keep_leaked` (default: the config's run.keep_leaked)."""
    v = pick_variant(cfg, variant, want)
    system_role = cfg.models[v.model].effective_system_role
    ft = cfg.finetune
    split = training_items(evalset, seed=ft.seed if seed is None else seed, validation_share=ft.validation_share,
                           max_items=ft.max_train_items,
                           keep_leaked=cfg.run.keep_leaked if keep_leaked is None else keep_leaked)
    train_path, val_path = default_paths(cfg, out)
    prompt = prompt_of(v)
    _write_checked(train_path, evalset, split.train, system_role, prompt)
    estimator = estimator_for(calibrate_from)
    limit = context_limit(ft.base_model)
    train_report = validate_training_file(train_path, estimator, limit=limit)
    val_report = None
    if split.validation:
        _write_checked(val_path, evalset, split.validation, system_role, prompt)
        val_report = validate_training_file(val_path, estimator, limit=limit, min_examples=1, role="validation")
    else:
        val_path.unlink(missing_ok=True)  # a stale one from an earlier export must not be uploaded
    cost = training_cost(train_report.tokens, ft.epochs, ft.base_model, cfg.pricing)
    return ExportResult(v, train_path, val_path if split.validation else None, train_report, val_report, split,
                        estimator, cost, system_role, limit)


def print_export(res: ExportResult, evalset: EvalSet, out: Out = print_line) -> None:
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
    for line in leakage_lines(res.split):
        out(line)
    out(f"cost        training ~ {res.cost.describe()}")
    for w in r.warnings + (res.validation_report.warnings if res.validation_report else []):
        out(f"warning     {w}")
    if all(x.ok for x in res.reports):
        out("check       ok: valid OpenAI chat fine-tuning data (roles, non-empty content, an assistant message "
            f"per example, >= {MIN_EXAMPLES} examples, <= {res.limit:,} tokens per example, <= 512 MB)")
