"""Command line: argument parsing only; the work happens in the modules it calls."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness import __version__
from harness.cli import finetune, plan
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
  harness view results/demo-20261122-101500 results/accepted
  harness import csv data.csv --input-col text --label-col category --out evalsets/mine --split test
  harness serve
  harness finetune export configs/demo.yaml
  harness finetune local configs/demo.yaml
  harness prices --pricing configs/pricing.yaml
  harness plan configs/demo.yaml --detect 10pp --from results/pilot
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
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")

    v = sub.add_parser("validate", help="check config, eval set, keys and prices as run would; no calls")
    v.add_argument("config", type=Path, help="run config YAML")
    v.add_argument("--allow-unpriced", action="store_true",
                   help="as with run: a model with no known price is not an error")
    add_today_option(v)
    _add_run(sub)
    rep = sub.add_parser("report", help="rebuild the tables and report.md / report.html from a run folder")
    rep.add_argument("run_dir", type=Path, help="the run folder (results/<name>-<timestamp>)")
    rep.add_argument("--reference", metavar="RUN_DIR:VARIANT", help="score every variant against that saved run's "
                     "answers of VARIANT (agreement, no labels needed) and keep the scores in the run folder")
    add_today_option(rep)  # dates how long a fine-tune can still serve (its base model's retirement)
    _add_compare(sub)
    _add_view(sub)
    mer = sub.add_parser("merge", help="join the shard folders of `run --shard K/N` into one run",
                         description="one run folder (tables and report too) from the folders of every shard "
                         "of a run (harness run --shard K/N)")
    mer.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="the shard run folders")
    mer.add_argument("--out", type=Path, required=True, help="the merged run folder to write (new or empty)")
    _add_import(sub)
    s = sub.add_parser("serve", help="start the embedded local model server until Ctrl-C")
    s.add_argument("--port", type=int, help="port to listen on (default: a free one, printed at start)")
    s.add_argument("--gguf", type=Path, help="another GGUF model instead of the embedded Gemma 3 270M")
    s.add_argument("--lora", type=Path, help="a LoRA adapter GGUF to load over the model")
    finetune.add(sub)
    pr = sub.add_parser("prices", help="list the price table (USD per 1M tokens), its dates and sources")
    pr.add_argument("--pricing", type=Path, help="a pricing file to merge over the built-in table")
    pr.add_argument("--json", action="store_true", help="print the rows as JSON")
    add_today_option(pr)
    plan.add(sub)
    _describe(p)
    return p


def _describe(parser: argparse.ArgumentParser) -> None:
    """Each command's own --help opens with the one-line description the command list shows."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:
                command = action.choices[listed.dest]
                command.description = command.description or listed.help
                _describe(command)


def _add_run(sub: Any) -> None:
    r = sub.add_parser("run", help="run the variants on the held-out set and write a run folder")
    r.add_argument("config", type=Path, nargs="?", help="run config YAML (not needed with --resume)")
    r.add_argument("--limit", type=int, help="a seeded random sample of N held-out items (seed: run.seed), "
                   "stratified by label when the schema has one; the manifest records which items")
    r.add_argument("--variants", help="comma-separated variant names to run (default: all)")
    r.add_argument("--out", type=Path, help="run folder to write (default: results/<name>-<timestamp>)")
    r.add_argument("--force", action="store_true", help="with --out: replace the run already in that folder "
                   "(only a run folder is ever deleted)")
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
    r.add_argument("--reference", metavar="RUN_DIR:VARIANT", help="score every variant against the answers of "
                   "VARIANT in that saved run (agreement with it; overrides the config's reference:)")
    r.add_argument("--split", choices=["test", "train"], default="test",
                   help="which items to ask: test (held out, default) or train, to record a model's answers as "
                   "training data (harness finetune export --from-run); a train run is no evaluation")
    add_today_option(r)


def _add_compare(sub: Any) -> None:
    cmp_ = sub.add_parser("compare", help="regression gate: exit 1 when a candidate run falls behind",
                          description="regression gate: a candidate run against an accepted run. Exits 1 naming each "
                          "rule that fired: incomplete, missing-variant, scoring-changed, subset, unknown-scores, "
                          "error-rate, format-valid, accuracy-drop (see the README's gate section)")
    cmp_.add_argument("accepted_run", type=Path, metavar="ACCEPTED", help="the accepted run folder")
    cmp_.add_argument("candidate_run", type=Path, metavar="CANDIDATE", help="the new (candidate) run folder")
    cmp_.add_argument("--variant", help="compare only this variant (default: the fine-tuned variant if both runs "
                      "have it, else every variant name they share)")
    cmp_.add_argument("--max-drop", type=float, default=0.02, help="tolerated drop as a share (default 0.02 = 2 pp)")
    cmp_.add_argument("--alpha", type=float, default=0.05, help="significance level of the paired test (default 0.05)")
    cmp_.add_argument("--json", action="store_true", help="print the comparison as JSON")
    cmp_.add_argument("--allow-different-evalset", action="store_true",
                      help="compare even when the eval set hashes differ (items are paired by id)")
    cmp_.add_argument("--allow-missing-variant", action="append", default=[], metavar="NAME",
                      help="pass although variant NAME of the accepted run has no records in the candidate "
                      "(repeatable)")
    cmp_.add_argument("--allow-subset", action="store_true",
                      help="pass although the candidate did not ask every item of the accepted run (compare the "
                      "items both asked)")
    cmp_.add_argument("--allow-scoring-change", action="store_true",
                      help="pass although the primary score, the scorers or the judge model differ")
    cmp_.add_argument("--metric", choices=["accuracy", "agreement", "ppi"],
                      help="what the drop rule gates: accuracy (the primary score), agreement with the reference, or "
                      "ppi (a judge-scored accuracy corrected by the human-scored items); default: accuracy when the "
                      "items have expected answers, else agreement")
    cmp_.add_argument("--show", type=int, default=20, help="changed items listed per direction (default 20)")


def _add_view(sub: Any) -> None:
    vw = sub.add_parser("view", help="browse a run's items, prompts, answers and scores in the browser",
                        description="browse every item, prompt, answer and score of a run in the browser; with a "
                        "second run, the two side by side and the gate's verdict")
    vw.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder to look at")
    vw.add_argument("other_run", type=Path, nargs="?", metavar="ACCEPTED_RUN_DIR",
                    help="the accepted run to compare it with, item by item")
    vw.add_argument("--out", type=Path, help="write the view as one self-contained HTML file instead of serving it")
    vw.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    vw.add_argument("--no-open", action="store_true", help="do not open the browser")
    vw.add_argument("--max-drop", type=float, default=0.02, help="the gate's tolerance, as in harness compare")
    vw.add_argument("--alpha", type=float, default=0.05, help="the gate's significance level, as in harness compare")


def _add_import(sub: Any) -> None:
    imp = sub.add_parser("import", help="build an eval set from a CSV or JSONL file")
    imp.add_argument("kind", choices=["csv", "jsonl"], help="format of the input file")
    imp.add_argument("file", type=Path, help="the CSV or JSONL file to import (UTF-8)")
    imp.add_argument("--input-col", action="append", required=True, help="input column (repeatable)")
    imp.add_argument("--label-col", required=True, help="column holding the expected label")
    imp.add_argument("--label-field", help="name of the answer field (default: the label column's name)")
    imp.add_argument("--id-col", help="column with stable item ids (default: <split>-<row>)")
    imp.add_argument("--out", type=Path, required=True, help="eval set folder, e.g. evalsets/NAME")
    imp.add_argument("--split", choices=["test", "train"], default="test",
                     help="which split the rows become (default test)")
    imp.add_argument("--instructions", help="task instructions written to a new task.yaml")
    imp.add_argument("--sample", type=int, help="keep a seeded random sample of N rows")
    imp.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    imp.add_argument("--force", action="store_true", help="overwrite an existing split file")


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.config import load_config
    from harness.data.evalset import load_evalset
    from harness.models.pricing import PriceTable
    from harness.runner.leakage import leakage_lines
    from harness.runner.preflight import preflight
    from harness.runner.variant_plan import resolve_model_id
    from harness.scoring.suite import TaskScoring

    cfg = load_config(args.config)
    ev = load_evalset(cfg.evalset)
    scoring = TaskScoring.for_evalset(ev)  # task.yaml's scorers: a bad entry is an eval-set error, as in `run`
    prices = PriceTable.load(cfg.pricing)
    print(f"config   {args.config}: ok ({len(cfg.variants)} variants, {len(cfg.models)} models)")
    print(f"evalset  {ev.path}: {len(ev.test)} test, {len(ev.train)} train, {len(ev.docs)} docs, "
          f"hash {ev.content_hash[:12]}")
    _validate_scoring(cfg, ev, scoring)
    # The very checks `harness run` makes before its first call: same errors, warnings and skipped variants.
    found = preflight(cfg, ev, list(cfg.variants), prices, allow_unpriced=args.allow_unpriced, today=args.today,
                      config_path=str(args.config))
    for v in cfg.variants:
        if v.name in found.skipped:
            print(f"skipped: {v.name}: {found.skipped[v.name]}")
            continue
        m, price = cfg.models[v.model], found.prices[v.name]
        decoding = m.effective_structured_output if ev.schema is not None else "free text"
        print(f"variant  {v.name}: {v.kind} on {resolve_model_id(cfg, v.model)} ({m.provider}, {decoding}); "
              f"price {price.basis if price.known or price.basis == 'reported' else 'unknown'}")
    from harness.data.leakage import text_warnings

    leaks = leakage_lines(cfg, ev, cfg.variants)
    for line in found.warnings + leaks + text_warnings(ev):
        print(f"warning: {line}")
    for line in found.notes:
        print(f"note: {line}")
    if not leaks:
        print("leakage: none found between the test split and train / few-shot pool / docs")
    errors = list(found.errors)
    if not errors and len(found.skipped) == len(cfg.variants):
        errors.append("every variant would be skipped, so `harness run` would measure nothing; fix a cause above")
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if errors:
        return 2
    ready = len(cfg.variants) - len(found.skipped)
    print(f"ready: `harness run {args.config}` would run {ready} variant(s)"
          + (f" and skip {len(found.skipped)}" if found.skipped else ""))
    return 0


def _validate_scoring(cfg: Any, ev: Any, scoring: Any) -> None:
    """Print what scores the run will report."""
    named = ", ".join(f"{s.name} ({s.describe()})" for s in scoring.scorers) or "none"
    kind = f"tool calls ({', '.join(t['function']['name'] for t in ev.tools)}) or text" if ev.tools else \
        "free text" if ev.free_text else "JSON"
    print(f"scoring  {kind} answers; primary {scoring.primary}; scorers: {named}")
    if scoring.judges():
        print(f"judge    {cfg.judge.model}" if cfg.judge else
              "judge    none configured: judge scores will be unknown (set judge: {model: NAME} in the config)")


def cmd_run(args: argparse.Namespace) -> int:
    from harness.api import run
    from harness.report.markdown import console_summary
    from harness.runner.runner import RunOptions

    if args.config is None and args.resume is None:
        raise HarnessError("run: give a config file, or --resume RUN_DIR")
    if args.limit is not None and args.limit < 1:
        raise HarnessError(f"--limit {args.limit}: give a number of items of 1 or more (leave --limit out to ask "
                           f"every held-out item)")
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
        force=args.force,
        today=args.today,
        reference=args.reference,
        split=args.split,
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
    from harness.rundir.manifest import FINISHED

    return 0 if result.status in FINISHED else (130 if result.status == "interrupted" else 1)


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.markdown import console_summary
    from harness.report.write import write_summary
    from harness.rundir import RunFolder

    folder = RunFolder.open(args.run_dir)
    if not folder.has_records():
        why = (folder.manifest.message or "").splitlines()
        raise HarnessError(f"{args.run_dir}: no records to report (run status {folder.manifest.status or '?'}"
                           f"{': ' + why[0] if why else ''}); fix the cause and run it again")
    if args.reference:
        from harness.runner.reference import score_run_folder

        score_run_folder(args.run_dir, args.reference)
        folder = RunFolder.open(args.run_dir)
    df = write_summary(args.run_dir, args.today)
    print(console_summary(folder.manifest, df))
    print(f"wrote {args.run_dir / 'summary.csv'}, {args.run_dir / 'summary.md'}, {args.run_dir / 'report.md'} "
          f"and {args.run_dir / 'report.html'}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.api import cli_merge as merge
    from harness.report.markdown import markdown_table

    result = merge(*args.run_dirs, out=args.out)
    print(markdown_table(result.summary))
    if result.message:
        print(result.message)
    shards = result.manifest.merged_from.shards if result.manifest.merged_from else []
    n = sum(s.records or 0 for s in shards)
    print(f"merged {len(shards)} shards ({n} records) into {result.path}")
    return 0 if result.status == "completed" else 1


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.api import cli_compare as compare

    result = compare(args.accepted_run, args.candidate_run, variant=args.variant, max_drop=args.max_drop,
                     alpha=args.alpha, allow_different_evalset=args.allow_different_evalset,
                     allow_missing_variant=args.allow_missing_variant, allow_subset=args.allow_subset,
                     allow_scoring_change=args.allow_scoring_change, metric=args.metric)
    print(result.to_json() if args.json else result.text(show=args.show))
    return result.exit_code


def cmd_view(args: argparse.Namespace) -> int:
    from harness.view import view

    return view(args.run_dir, args.other_run, out=args.out, port=args.port, open_browser=not args.no_open,
                max_drop=args.max_drop, alpha=args.alpha)


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


def cmd_prices(args: argparse.Namespace) -> int:
    from harness.report.prices import print_prices

    return print_prices(args.pricing, args.today, as_json=args.json)


COMMANDS = {"validate": cmd_validate, "prices": cmd_prices, "run": cmd_run, "report": cmd_report, "compare": cmd_compare,
            "merge": cmd_merge, "view": cmd_view,
            "import": cmd_import,
            "serve": cmd_serve, "finetune": finetune.cmd, "plan": plan.cmd}


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
