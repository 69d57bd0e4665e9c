"""Command line: argument parsing only; the work happens in the modules it calls."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness import __version__
from harness.clock import add_today_option
from harness.errors import HarnessError

EXAMPLES = """\
examples:
  harness validate configs/demo.yaml
  harness run configs/demo.yaml --limit 20 --variants baseline,rag
  harness run configs/demo.yaml --shard 2/8 --out results/shard-2
  harness merge results/shard-* --out results/full
  harness report results/demo-20261122-101500
  harness compare results/accepted results/demo-20261122-101500 --max-drop 0.02
  harness import csv data.csv --input-col text --label-col category --out evalsets/mine --split test
  harness serve
  harness finetune export configs/demo.yaml
  harness finetune local configs/demo.yaml
  harness prices --pricing configs/pricing.yaml
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness",
        description="Run one held-out eval set through baseline, few-shot, RAG and fine-tuned variants and "
        "compare format validity, accuracy, cost and latency.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check config, eval set, schema and prices; calls no model")
    v.add_argument("config", type=Path)
    add_today_option(v)
    _add_run(sub)
    rep = sub.add_parser("report", help="rebuild the tables and report.md / report.html from a run folder")
    rep.add_argument("run_dir", type=Path)
    _add_compare(sub)
    mer = sub.add_parser("merge", help="one run folder (tables and report too) from the folders of every shard "
                         "of a run (harness run --shard K/N)")
    mer.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="the shard run folders")
    mer.add_argument("--out", type=Path, required=True, help="the merged run folder to write (new or empty)")
    _add_import(sub)
    s = sub.add_parser("serve", help="start the embedded local model server until Ctrl-C")
    s.add_argument("--port", type=int)
    s.add_argument("--gguf", type=Path, help="another GGUF model instead of the embedded Gemma 3 270M")
    s.add_argument("--lora", type=Path, help="a LoRA adapter GGUF to load over the model")
    _add_finetune(sub)
    pr = sub.add_parser("prices", help="list the price table (USD per 1M tokens), its dates and sources")
    pr.add_argument("--pricing", type=Path, help="a pricing file to merge over the built-in table")
    pr.add_argument("--json", action="store_true", help="print the rows as JSON")
    add_today_option(pr)
    return p



def _add_run(sub: Any) -> None:
    r = sub.add_parser("run", help="run the variants on the held-out set and write a run folder")
    r.add_argument("config", type=Path, nargs="?", help="run config YAML (not needed with --resume)")
    r.add_argument("--limit", type=int, help="a seeded random sample of N held-out items (seed: run.seed), "
                   "stratified by label when the schema has one; the manifest records which items")
    r.add_argument("--variants", help="comma-separated variant names to run (default: all)")
    r.add_argument("--out", type=Path, help="run folder to write (default: results/<name>-<timestamp>)")
    r.add_argument("--results-dir", type=Path, default=Path("results"), help="where run folders go")
    r.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    r.add_argument("--retry-errors", action="store_true",
                   help="with --resume: ask again the items whose call got no answer (errors); the new record "
                   "replaces the old one in the tables")
    r.add_argument("--no-cache", action="store_true", help="neither read nor write the response cache")
    r.add_argument("--refresh", action="store_true", help="ask the model again and overwrite cached answers")
    r.add_argument("--allow-unpriced", action="store_true", help="run models with no known price (cost unknown)")
    r.add_argument("--max-error-rate", type=float, help="stop early when this share of calls fails (0-1)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--shard", metavar="K/N", help="run only shard K of N: the selected items whose sha256(id) "
                   "mod N is K-1 (one CI job each; join them with harness merge)")
    add_today_option(r)


def _add_compare(sub: Any) -> None:
    cmp_ = sub.add_parser("compare", help="regression gate: a candidate run against an accepted baseline run "
                          "(exit 1 on a significant drop beyond the tolerance)")
    cmp_.add_argument("baseline_run", type=Path, help="the accepted run folder")
    cmp_.add_argument("candidate_run", type=Path, help="the new run folder")
    cmp_.add_argument("--variant", help="compare only this variant (default: the fine-tuned variant if both runs "
                      "have it, else every variant name they share)")
    cmp_.add_argument("--max-drop", type=float, default=0.02, help="tolerated drop as a share (default 0.02 = 2 pp)")
    cmp_.add_argument("--alpha", type=float, default=0.05, help="significance level of the McNemar test (default 0.05)")
    cmp_.add_argument("--json", action="store_true", help="print the comparison as JSON")
    cmp_.add_argument("--allow-different-evalset", action="store_true",
                      help="compare even when the eval set hashes differ (items are paired by id)")
    cmp_.add_argument("--show", type=int, default=20, help="changed items listed per direction (default 20)")


def _add_import(sub: Any) -> None:
    imp = sub.add_parser("import", help="build an eval set from a CSV or JSONL file")
    imp.add_argument("kind", choices=["csv", "jsonl"])
    imp.add_argument("file", type=Path)
    imp.add_argument("--input-col", action="append", required=True, help="input column (repeatable)")
    imp.add_argument("--label-col", required=True, help="column holding the expected label")
    imp.add_argument("--label-field", help="name of the answer field (default: the label column's name)")
    imp.add_argument("--id-col", help="column with stable item ids (default: <split>-<row>)")
    imp.add_argument("--out", type=Path, required=True, help="eval set folder, e.g. evalsets/NAME")
    imp.add_argument("--split", choices=["test", "train"], default="test")
    imp.add_argument("--instructions", help="task instructions written to a new task.yaml")
    imp.add_argument("--sample", type=int, help="keep a seeded random sample of N rows")
    imp.add_argument("--seed", type=int, default=0)
    imp.add_argument("--force", action="store_true", help="overwrite an existing split file")


def _add_finetune(sub: Any) -> None:
    ft = sub.add_parser("finetune", help="export training data, run an OpenAI fine-tuning job, or train a local LoRA")
    ft_sub = ft.add_subparsers(dest="finetune_command", required=True, metavar="ACTION")
    fe = ft_sub.add_parser("export", help="write the train split as OpenAI chat JSONL, validate it, estimate the cost")
    fo = ft_sub.add_parser("openai", help="upload the training data, create the job, follow it, save the model id")
    fl = ft_sub.add_parser("local", help="LoRA on the embedded Gemma 3 270M, written as a GGUF adapter "
                           "(needs the finetune extra)")
    for sp in (fe, fo, fl):
        sp.add_argument("config", type=Path)
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
    fl.add_argument("--out", type=Path, help="adapter GGUF to write (default: the model's lora: path)")
    fl.add_argument("--max-steps", type=int, help="override finetune.max_steps")
    fl.add_argument("--no-verify", action="store_true", help="skip loading the adapter in llama.cpp afterwards")
    for sp in (fo, fl):
        sp.add_argument("--no-progress", action="store_true", help="no progress bar")

def cmd_validate(args: argparse.Namespace) -> int:
    import os

    from harness.config import header_values, load_config
    from harness.data.evalset import load_evalset
    from harness.models.pricing import PriceTable, stale_warning
    from harness.runner.variant_plan import resolve_model_id

    cfg = load_config(args.config)
    ev = load_evalset(cfg.evalset)
    prices = PriceTable.load(cfg.pricing)
    print(f"config   {args.config}: ok ({len(cfg.variants)} variants, {len(cfg.models)} models)")
    print(f"evalset  {ev.path}: {len(ev.test)} test, {len(ev.train)} train, {len(ev.docs)} docs, "
          f"hash {ev.content_hash[:12]}")
    problems = _validate_scoring(cfg, ev)
    warned: set[str] = set()
    for v in cfg.variants:
        m = cfg.models[v.model]
        model_id = resolve_model_id(cfg, v.model)
        price = prices.for_model(m, model_id)
        price_txt = f"{price.basis}" if price.known else "NO PRICE (run stops unless --allow-unpriced)"
        note = ""
        if v.kind == "few_shot" and not ev.train:
            note, problems = " - needs train.jsonl", problems + 1
        if v.kind == "rag" and not ev.docs:
            note, problems = " - needs docs/", problems + 1
        env = m.effective_api_key_env
        if env and m.provider in ("openai", "azure") and not os.environ.get(env):
            note += f" - {env} is not set"
            problems += 1
        try:
            header_values(m)
        except HarnessError as exc:
            note += f" - {exc}"
            problems += 1
        decoding = m.effective_structured_output if ev.schema is not None else "free text"
        print(f"variant  {v.name}: {v.kind} on {model_id} ({m.provider}, {decoding}); "
              f"price {price_txt}{note}")
        if not price.known:
            problems += 1
        stale = stale_warning(price, args.today)
        if stale and stale not in warned:
            warned.add(stale)
            print(f"warning: {stale}")
    from harness.runner.leakage import leakage_lines

    leaks = leakage_lines(cfg, ev, cfg.variants)
    for line in leaks:
        print(f"warning: {line}")
    if not leaks:
        print("leakage: none found between the test split and train / few-shot pool / docs")
    return 2 if problems else 0


def _validate_scoring(cfg: Any, ev: Any) -> int:
    """Print what scores the run will report; return the problems found (variant prompts items cannot fill)."""
    from harness.prompts.variants import check_prompt
    from harness.scoring.suite import TaskScoring

    scoring = TaskScoring.for_evalset(ev)
    named = ", ".join(f"{s.name} ({s.describe()})" for s in ev.scorers) or "none"
    print(f"scoring  {'free text' if ev.free_text else 'JSON'} answers; primary {scoring.primary}; scorers: {named}")
    if scoring.judges():
        print(f"judge    {cfg.judge.model}" if cfg.judge else
              "judge    none configured: judge scores will be unknown (set judge: {model: NAME} in the config)")
    problems = 0
    for v in cfg.variants:
        problem = check_prompt(v, ev)
        if problem:
            print(f"problem  {problem}")
            problems += 1
    return problems


def cmd_run(args: argparse.Namespace) -> int:
    from harness.api import run
    from harness.report.markdown import console_summary
    from harness.runner.runner import RunOptions

    if args.config is None and args.resume is None:
        raise HarnessError("run: give a config file, or --resume RUN_DIR")
    opts = RunOptions(
        limit=args.limit,
        variants=[x.strip() for x in args.variants.split(",") if x.strip()] if args.variants else None,
        out=args.out,
        results_dir=args.results_dir,
        resume=args.resume,
        use_cache=not args.no_cache,
        refresh=args.refresh,
        allow_unpriced=args.allow_unpriced,
        max_error_rate=args.max_error_rate,
        progress=not args.no_progress,
        retry_errors=args.retry_errors,
        shard=args.shard,
        today=args.today,
    )
    result = run(args.config, opts)
    if result.status == "nothing_run":
        print(f"error: {result.message}", file=sys.stderr)
        print(f"run folder: {result.path}")
        return 1
    print(console_summary(result.manifest, result.summary))
    for name, reason in result.skipped.items():
        print(f"skipped {name}: {reason}")
    if result.message:
        print(result.message)
    print(f"run folder: {result.path}")
    return 0 if result.status == "completed" else (130 if result.status == "interrupted" else 1)


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.markdown import console_summary
    from harness.report.write import write_summary
    from harness.runner.folder import load_manifest

    df = write_summary(args.run_dir)
    print(console_summary(load_manifest(args.run_dir), df))
    print(f"wrote {args.run_dir / 'summary.csv'}, {args.run_dir / 'summary.md'}, {args.run_dir / 'report.md'} "
          f"and {args.run_dir / 'report.html'}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.api import merge
    from harness.report.markdown import markdown_table

    result = merge(*args.run_dirs, out=args.out)
    print(markdown_table(result.summary))
    if result.message:
        print(result.message)
    shards = result.manifest.get("merged_from") or {}
    n = sum(s.get("records") or 0 for s in shards.get("shards", []))
    print(f"merged {len(shards.get('shards', []))} shards ({n} records) into {result.path}")
    return 0 if result.status == "completed" else 1


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.analysis.compare import format_text, to_json
    from harness.api import compare

    result = compare(args.baseline_run, args.candidate_run, variant=args.variant, max_drop=args.max_drop,
                          alpha=args.alpha, allow_different_evalset=args.allow_different_evalset)
    print(to_json(result) if args.json else format_text(result, show=args.show))
    return result.exit_code


def cmd_import(args: argparse.Namespace) -> int:
    from harness.data.importer import import_table

    info = import_table(
        args.kind, args.file, args.out, input_cols=args.input_col, label_col=args.label_col, split=args.split,
        id_col=args.id_col, label_field=args.label_field, instructions=args.instructions, sample=args.sample,
        seed=args.seed, force=args.force,
    )
    print(f"wrote {info['items']} items to {info['split']} ({info['labels']} labels; enum now has "
          f"{info['enum_size']} values in {args.out / 'task.yaml'})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from harness.models import local

    gguf = args.gguf or local.ensure_gguf()
    alias = local.DEFAULT_LOCAL_MODEL if args.gguf is None else args.gguf.stem
    specs = [local.LocalModelSpec(alias=alias, gguf=gguf)]
    if args.lora:
        specs.append(local.LocalModelSpec(alias=f"{alias}-ft", gguf=gguf, lora=args.lora))
    local.serve_forever(specs, port=args.port)
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from harness.config import load_config
    from harness.data.evalset import load_evalset

    cfg = load_config(args.config)
    ev = load_evalset(cfg.evalset)
    if args.keep_leaked:
        cfg.run.keep_leaked = True
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
    from harness.finetune.local import train_local

    train_local(cfg, ev, config_path=str(args.config), variant=args.variant, out=args.out, max_steps=args.max_steps,
                seed=args.seed, verify=not args.no_verify, progress=not args.no_progress)
    return 0


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def cmd_prices(args: argparse.Namespace) -> int:
    import json

    from harness import clock
    from harness.models.pricing import STALE_AFTER_DAYS, PriceTable, table_rows

    table = PriceTable.load(args.pricing)
    rows = table_rows(table, args.today)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    head = ["model", "input", "cached", "output", "batch in/out", "fine-tuned in/cached/out", "training",
            "date", "source"]
    lines = []
    for r in rows:
        ft = "-"
        if r["ft_input"] is not None:
            ft = "/".join(_money(r[k]) for k in ("ft_input", "ft_cached_input", "ft_output"))
        training = "-"
        if r["training_per_1m"] is not None:
            training = f"{_money(r['training_per_1m'])}/1M"
        elif r["training_per_hour"] is not None:
            training = f"{_money(r['training_per_hour'])}/hour"
        date = (r["as_of"] or "-") + (" !" if r["stale"] else "")
        if r["ft_as_of"] and r["ft_as_of"] != r["as_of"]:
            date += f" (ft {r['ft_as_of']}{' !' if r['ft_stale'] else ''})"
        batch = "-" if r["batch_input"] is None else f"{_money(r['batch_input'])}/{_money(r['batch_output'])}"
        source = " ".join((r["source"] or "-").split())
        if r["ft_source"]:
            source += " | fine-tuned: " + " ".join(r["ft_source"].split())
        lines.append([r["model"], _money(r["input"]), _money(r["cached_input"]), _money(r["output"]), batch, ft,
                      training, date, source])
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=False)]
    for line in [head, *lines]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=False)) + "  " + line[-1])
    print(f"\nUSD per 1M tokens ({', '.join(table.sources)}); batch is the Batch API price "
          f"({'listed, else ' if any(e.batch for e in table.entries.values()) else ''}"
          f"{_money(table.batch_discount)} x standard); '!' marks a price read more than {STALE_AFTER_DAYS} days "
          f"before {clock.today(args.today)}: check it before relying on it.")
    listed = [f"{snap} ({r['model']})" for r in rows for snap in r["snapshots"]]
    if listed:
        print(f"Dated snapshots priced as the row in brackets: {', '.join(listed)}; any other dated id is unpriced "
              f"until a pricing file lists it.")
    return 0


COMMANDS = {"validate": cmd_validate, "prices": cmd_prices, "run": cmd_run, "report": cmd_report, "compare": cmd_compare,
            "merge": cmd_merge,
            "import": cmd_import,
            "serve": cmd_serve, "finetune": cmd_finetune}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
