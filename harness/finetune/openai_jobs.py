"""`harness finetune openai`: upload the training data, create the job, follow it, save the model id.

The job outlives the command: its id and files are kept in a state file, Ctrl-C stops only the following,
and `--job` picks an existing job up again. The model id is written where the fine-tuned model's
`model_file` points, so the next `harness run` uses it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.config import FinetuneSettings, ModelConfig, RunConfig, VariantConfig, api_key_for
from harness.data.evalset import EvalSet
from harness.errors import HarnessError
from harness.finetune.console import Out, print_line
from harness.finetune.data import assert_no_test_items, pick_variant
from harness.finetune.estimates import estimator_for, training_cost, training_price
from harness.finetune.export import export, print_export
from harness.finetune.openai_format import context_limit, raise_if_invalid, validate_training_file

MAX_SUFFIX_CHARS = 64
TERMINAL = ("succeeded", "failed", "cancelled")


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
                  out: Out = print_line) -> Path:
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


# -- following a job ------------------------------------------------------------------------------------------


def _ts(epoch: int | float | None) -> str:
    if not epoch:
        return "        "
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


def _show_event(ev: Any, bar: Any, progress: bool, out: Out) -> None:
    """A metrics event moves the progress bar (step, total, loss); any other event is printed as a line."""
    from tqdm import tqdm

    data = ev.data if isinstance(ev.data, dict) else {}
    if ev.type == "metrics" and "step" in data:
        if data.get("total_steps"):
            bar.total = int(data["total_steps"])
        bar.n = int(data["step"])
        if data.get("train_loss") is not None:
            bar.set_postfix(loss=f"{float(data['train_loss']):.4f}", refresh=False)
        bar.refresh()
        return
    line = f"  {_ts(ev.created_at)} {ev.level:<5} {ev.message}"
    if progress:
        tqdm.write(line, file=sys.stdout)
    else:
        out(line)


def follow_job(client: Any, job_id: str, *, poll_s: float = 10.0, progress: bool = True,
               out: Out = print_line, sleep: Callable[[float], None] | None = None) -> Any:
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
                if ev.id not in seen:
                    seen.add(ev.id)
                    _show_event(ev, bar, progress, out)
            bar.set_description(job.status)
            bar.refresh()
            if job.status in TERMINAL:
                return job
            sleep(poll_s)
    finally:
        bar.close()


# -- the job's state file -------------------------------------------------------------------------------------


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


def _read_state(path: Path, job_id: str) -> dict[str, Any]:
    return json.loads(path.read_text("utf-8")) if path.exists() else {"job_id": job_id}


# -- creating a job -------------------------------------------------------------------------------------------


def _check_suffix(ft: FinetuneSettings) -> None:
    if ft.suffix is not None and len(ft.suffix) > MAX_SUFFIX_CHARS:
        raise HarnessError(f"finetune.suffix: {len(ft.suffix)} characters; OpenAI allows at most {MAX_SUFFIX_CHARS}")


def _training_files(cfg: RunConfig, evalset: EvalSet, v: VariantConfig, *, training_file: Path | None,
                    calibrate_from: Path | None, seed: int, out: Out) -> tuple[Path, Path | None]:
    """The (train, validation) files to upload: the export of the train split, or `--training-file` as given;
    either way checked against OpenAI's rules and for held-out items, with the cost printed."""
    ft = cfg.finetune
    if training_file is None:
        res = export(cfg, evalset, variant=v.name, calibrate_from=calibrate_from, seed=seed, want="remote")
        print_export(res, evalset, out)
        raise_if_invalid(*res.reports)
        return res.train_path, res.validation_path
    estimator = estimator_for(calibrate_from)
    report = validate_training_file(training_file, estimator, limit=context_limit(ft.base_model))
    raise_if_invalid(report)
    assert_no_test_items(evalset, [], training_file)
    out(f"training    {training_file}: {report.examples} examples, ~{report.tokens:,} tokens "
        f"({estimator.method})")
    cost = training_cost(report.tokens, ft.epochs, ft.base_model, cfg.pricing)
    out(f"cost        training ~ {cost.describe()}")
    return training_file, None


def _upload(client: Any, path: Path, out: Out) -> str:
    with path.open("rb") as fh:
        file_id = client.files.create(file=(path.name, fh), purpose="fine-tune").id
    out(f"uploaded    {path.name} as {file_id}")
    return file_id


def create_job(client: Any, cfg: RunConfig, v: VariantConfig, train_path: Path, val_path: Path | None, *,
               seed: int, out: Out) -> str:
    """Upload the file(s), create the job, and record it in the state file; returns the job id."""
    ft = cfg.finetune
    train_id = _upload(client, train_path, out)
    val_id = _upload(client, val_path, out) if val_path is not None else None
    kwargs: dict[str, Any] = {
        "model": ft.base_model, "training_file": train_id, "seed": seed,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": ft.epochs}}},
    }
    if val_id:
        kwargs["validation_file"] = val_id
    if ft.suffix:
        kwargs["suffix"] = ft.suffix
    job = client.fine_tuning.jobs.create(**kwargs)
    state_path = job_state_path(cfg)
    _write_state(state_path, {"job_id": job.id, "status": job.status, "base_model": ft.base_model,
                              "epochs": ft.epochs, "seed": seed, "suffix": ft.suffix, "variant": v.name,
                              "training_file": {"path": str(train_path), "id": train_id},
                              "validation_file": {"path": str(val_path), "id": val_id} if val_id else None,
                              "created_at": datetime.now(UTC).isoformat(timespec="seconds")})
    out(f"job         {job.id} created ({ft.base_model}, {ft.epochs} epochs, seed {seed}"
        + (f", suffix {ft.suffix}" if ft.suffix else "") + f"); state in {state_path}")
    return job.id


# -- finishing a job ------------------------------------------------------------------------------------------


def _follow(client: Any, job_id: str, config_path: str, *, poll_s: float, progress: bool, out: Out) -> Any:
    """follow_job, telling on Ctrl-C how to pick the still-running job up again."""
    try:
        return follow_job(client, job_id, poll_s=poll_s, progress=progress, out=out)
    except KeyboardInterrupt:
        print(f"\nstopped following; job {job_id} keeps running at OpenAI. Follow it again (and save its model "
              f"id) with: harness finetune openai {config_path} --job {job_id}", file=sys.stderr, flush=True)
        raise


def _job_error(job: Any) -> str:
    """': [code] message (param p)' from the job's error, or '' when it has none."""
    err = job.error
    if err is None:
        return ""
    return ": " + " ".join(x for x in (f"[{err.code}]" if err.code else "", err.message or "",
                                       f"(param {err.param})" if err.param else "") if x)


def _record_outcome(state_path: Path, job: Any, job_id: str) -> None:
    """Save the ended job's status in the state file; a job that did not give a model is an error."""
    state = _read_state(state_path, job_id)
    state.update({"status": job.status, "fine_tuned_model": job.fine_tuned_model,
                  "trained_tokens": job.trained_tokens, "finished_at": job.finished_at})
    if job.status != "succeeded":
        detail = _job_error(job)
        state["error"] = detail.lstrip(": ")
        _write_state(state_path, state)
        raise HarnessError(f"fine-tuning job {job_id} {job.status}{detail}")
    if not job.fine_tuned_model:
        raise HarnessError(f"fine-tuning job {job_id} succeeded but returned no fine_tuned_model")
    _write_state(state_path, state)


def _print_trained_tokens(cfg: RunConfig, trained_tokens: int | None, out: Out) -> None:
    if not trained_tokens:
        return
    price, _ = training_price(cfg.finetune.base_model, cfg.pricing)
    cost = f" = ${trained_tokens * price / 1e6:,.2f} at ${price:.2f}/1M" if price is not None else ""
    out(f"trained     {trained_tokens:,} billed training tokens{cost}")


# -- the command ----------------------------------------------------------------------------------------------


def run_openai(cfg: RunConfig, evalset: EvalSet, *, config_path: str, variant: str | None = None,
               training_file: Path | None = None, calibrate_from: Path | None = None, seed: int | None = None,
               job_id: str | None = None, wait: bool = True, poll_s: float = 10.0, progress: bool = True,
               out: Out = print_line) -> JobResult:
    """Export (or take) the data, upload it, create the job, follow it, save the model id.

    With `job_id` it only follows an existing job (after Ctrl-C or --no-wait) and saves its result.
    """
    v = pick_variant(cfg, variant, "remote")
    client = openai_client(cfg.models[v.model], v.model)
    if job_id is None:
        seed = cfg.finetune.seed if seed is None else seed
        _check_suffix(cfg.finetune)
        train_path, val_path = _training_files(cfg, evalset, v, training_file=training_file,
                                               calibrate_from=calibrate_from, seed=seed, out=out)
        job_id = create_job(client, cfg, v, train_path, val_path, seed=seed, out=out)
    if not wait:
        out(f"follow it   harness finetune openai {config_path} --job {job_id}")
        return JobResult(job_id, "created", None, None, None)
    job = _follow(client, job_id, config_path, poll_s=poll_s, progress=progress, out=out)
    _record_outcome(job_state_path(cfg), job, job_id)
    path = save_model_id(cfg, v, job.fine_tuned_model, config_path, out)
    _print_trained_tokens(cfg, job.trained_tokens, out)
    out(f"next        harness run {config_path} --variants {v.name}")
    return JobResult(job_id, job.status, job.fine_tuned_model, path, job.trained_tokens)
