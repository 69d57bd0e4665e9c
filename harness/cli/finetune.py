"""`harness finetune export|openai|local`: argument parsing only; the work is in harness.finetune."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add(sub: Any) -> None:
    ft = sub.add_parser("finetune", help="export training data, run an OpenAI job, or train a local LoRA")
    ft_sub = ft.add_subparsers(dest="finetune_command", required=True, metavar="ACTION", help="one of:")
    fe = ft_sub.add_parser("export", help="write the train split as chat JSONL, check it, estimate cost",
                           description="write the train split as OpenAI chat JSONL, validate it, estimate the cost")
    fo = ft_sub.add_parser("openai", help="upload the data, create the job, follow it, save the model id")
    fl = ft_sub.add_parser("local", help="train a LoRA on the embedded Gemma 3 270M or a Hugging Face model",
                           description="LoRA on the embedded Gemma 3 270M (a GGUF adapter for llama.cpp and a PEFT "
                           "folder), or with finetune.base_model_path on any Hugging Face causal-LM folder (a PEFT "
                           "folder vLLM serves); CUDA when present, else the CPU (needs the finetune extra)")
    for sp in (fe, fo, fl):
        sp.add_argument("config", type=Path, help="run config YAML")
        sp.add_argument("--variant", help="the fine_tuned variant to train for (default: finetune.variant, "
                        "else the first fine_tuned variant of the right kind)")
        sp.add_argument("--seed", type=int, help="override finetune.seed (data split, job seed, LoRA init)")
        sp.add_argument("--keep-leaked", action="store_true",
                        help="keep train items that nearly repeat a test item (left out by default; a train item "
                        "that contains a test item's input is always left out); same as run.keep_leaked: true")
    for sp in (fe, fo):
        sp.add_argument("--calibrate-from", type=Path, metavar="RUN_DIR",
                        help="estimate tokens with tokens-per-char measured in this run (default: chars/4)")
    fe.add_argument("--out", type=Path, help="training JSONL to write (default: <finetune.output_dir>/<name>-train.jsonl)")
    fo.add_argument("--training-file", type=Path, help="upload this JSONL instead of exporting the train split")
    fo.add_argument("--job", metavar="JOB_ID", help="follow an existing job (after Ctrl-C or --no-wait) and save its model")
    fo.add_argument("--no-wait", action="store_true", help="create the job and return without following it")
    fo.add_argument("--poll", type=float, default=10.0, help="seconds between status checks (default 10)")
    fl.add_argument("--out", type=Path, help="adapter to write: the GGUF (default: the model's lora: path), or with "
                    "finetune.base_model_path the PEFT folder (default: <finetune.output_dir>/<name>-lora)")
    fl.add_argument("--max-steps", type=int, help="override finetune.max_steps")
    fl.add_argument("--no-verify", action="store_true", help="skip answering a few training prompts with and "
                    "without the adapter afterwards")
    for sp in (fo, fl):
        sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    for sp in (fe, fl):
        sp.add_argument("--from-run", type=Path, metavar="RUN_DIR",
                        help="distillation: train on the answers --variant NAME gave in this run over the train "
                        "split (harness run CONFIG --split train), not on the labels; the prompts are still the "
                        "fine-tuned variant's (finetune.variant, else the first fine_tuned variant)")


def _distilled(args: argparse.Namespace, cfg: Any, ev: Any) -> tuple[Any, str | None]:
    """With --from-run: the eval set whose train items expect the run's recorded answers (the counts printed),
    and no --variant left for picking the fine-tuned variant (it named the run's variant); else as given."""
    if args.from_run is None:
        return ev, args.variant
    from harness.errors import HarnessError
    from harness.finetune.data import training_items
    from harness.finetune.distill import distill_lines, distilled_evalset

    if not args.variant:
        raise HarnessError("--from-run RUN_DIR: name the variant whose recorded answers to train on with "
                           "--variant NAME")
    d = distilled_evalset(ev, args.from_run, args.variant)
    ft = cfg.finetune
    split = training_items(d.evalset, seed=ft.seed if args.seed is None else args.seed,
                           validation_share=ft.validation_share, max_items=ft.max_train_items,
                           keep_leaked=cfg.run.keep_leaked) if d.evalset.train else None
    if split is None or not (split.train or split.validation):
        raise HarnessError(f"{args.from_run}: no clean answer of variant {args.variant!r} on a train item is left "
                           f"to train on ({', '.join(f'{k}: {len(v)}' for k, v in d.dropped.items()) or 'none'})")
    for line in distill_lines(d, split):
        print(line)
    return d.evalset, None


def cmd(args: argparse.Namespace) -> int:
    from harness.config import load_config
    from harness.data.evalset import load_evalset

    cfg = load_config(args.config)
    ev = load_evalset(cfg.evalset)
    if args.keep_leaked:
        cfg.run.keep_leaked = True
    if args.finetune_command != "openai":
        ev, args.variant = _distilled(args, cfg, ev)
    if args.finetune_command == "export":
        from harness.finetune.export import export, print_export
        from harness.finetune.openai_format import raise_if_invalid

        res = export(cfg, ev, out=args.out, variant=args.variant, calibrate_from=args.calibrate_from, seed=args.seed)
        print_export(res, ev)
        raise_if_invalid(*res.reports)
        return 0
    if args.finetune_command == "openai":
        from harness.finetune.openai_jobs import run_openai

        run_openai(cfg, ev, config_path=str(args.config), variant=args.variant, training_file=args.training_file,
                   calibrate_from=args.calibrate_from, seed=args.seed, job_id=args.job, wait=not args.no_wait,
                   poll_s=args.poll, progress=not args.no_progress)
        return 0
    if cfg.finetune.base_model_path is not None:  # any Hugging Face causal LM: a PEFT adapter for vLLM
        from harness.finetune.hf_local import train_hf as train_local
    else:
        from harness.finetune.local import train_local

    train_local(cfg, ev, config_path=str(args.config), variant=args.variant, out=args.out, max_steps=args.max_steps,
                seed=args.seed, verify=not args.no_verify, progress=not args.no_progress)
    return 0
