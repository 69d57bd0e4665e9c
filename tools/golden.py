#!/usr/bin/env python3
"""Golden outputs for a restructuring: the same run folders, rendered by the code before and after, must give
byte-identical summary.csv, summary.md, report.md, report.html and `harness compare` output (issue 19, point 6).

Workflow. Run each step from the root of the checkout whose code it should use, with PYTHONPATH=$PWD: the
harness it calls (`python -m harness`, in a subprocess) is the one on PYTHONPATH, and it prints which one.

    cd /path/to/old-checkout     # the code before the change (main)
    # 1. once: about 18 varied run folders made against loopback fakes, plus pairs.json (about 1 minute)
    PYTHONPATH=$PWD /work/main/.venv/bin/python tools/golden.py make /tmp/golden/runs
    # 2. render them with the old code: copy each run's inputs, `harness report`, `harness compare` per pair
    PYTHONPATH=$PWD /work/main/.venv/bin/python tools/golden.py render /tmp/golden/runs /tmp/golden/old
    cd /path/to/new-checkout     # the code after the change
    # 3. render the same run folders with the new code
    PYTHONPATH=$PWD /work/main/.venv/bin/python tools/golden.py render /tmp/golden/runs /tmp/golden/new
    # 4. exit 0 when every output is byte-identical, else 1 naming the files and their first differing lines
    python3 tools/golden.py diff /tmp/golden/old /tmp/golden/new

Render twice with the same code first: that diff must be empty, or the rendering itself is not deterministic.
`make` also needs the checkout's tests/ package (the loopback fakes and the tests' eval-set helpers). Keep the
runs folder in place: its manifests point at the eval sets in its _inputs/ folder, which the reports read.
Render prints what it pins (environment) and normalises; compare outputs are stdout, then "# stderr:" and
"# exit code: N" lines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

OUTPUTS = ("summary.csv", "summary.md", "report.md", "report.html")  # what `harness report` rebuilds
COMPARE, CONSOLE = "compare", "_console"
# Pinned for every harness call of a render, so two renders differ only where the code does.
PINNED_ENV = {"PYTHONHASHSEED": "0", "TZ": "UTC", "LC_ALL": "C.UTF-8", "COLUMNS": "120"}
RENDER_DIR_TOKEN = "<RENDER_DIR>"


def harness(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **PINNED_ENV}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def with_trailer(proc: subprocess.CompletedProcess[str]) -> str:
    """stdout as printed, then stderr and the exit code: a golden file holds all the command told its user."""
    return f"{proc.stdout}\n# stderr:\n{proc.stderr}# exit code: {proc.returncode}\n"


def run_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "manifest.json").is_file())


def empty_dir(path: Path, force: bool) -> None:
    if path.exists() and any(path.iterdir()):
        if not force:
            raise SystemExit(f"{path}: not empty; pick a new folder or pass --force to replace it")
        if not ((path / "pairs.json").exists() or (path / "_render.json").exists()):
            raise SystemExit(f"{path}: --force replaces only a folder golden.py wrote (pairs.json or _render.json)")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def harness_identity() -> dict[str, str]:
    code = ("import harness, pathlib, subprocess; r = pathlib.Path(harness.__file__).resolve().parent.parent; "
            "g = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=r, capture_output=True, text=True).stdout.strip(); "
            "d = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=r, capture_output=True,"
            " text=True).stdout.strip(); print(harness.__file__); print(g + ('-dirty' if d else ''))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    lines = proc.stdout.splitlines() + ["?", "?"]
    return {"harness": lines[0], "git": lines[1] or "?", "python": sys.executable}


# -- make ----------------------------------------------------------------------------------------------------

def cmd_make(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import golden_runs
    except ImportError as exc:
        raise SystemExit(f"golden make: {exc}; run it from the repository root with PYTHONPATH=$PWD (it needs the "
                         "tests/ package for the loopback fakes)") from None
    out = args.out.resolve()
    empty_dir(out, args.force)
    who = harness_identity()
    print(f"making run folders in {out} with {who['harness']} (git {who['git']})", flush=True)
    info = golden_runs.make(out)
    runs = run_folders(out)
    print(f"made {len(runs)} run folders in {info['seconds']}s: {', '.join(p.name for p in runs)}")
    print(f"pairs for compare: {out / 'pairs.json'}")
    return 0


# -- render --------------------------------------------------------------------------------------------------

def render_run(src: Path, out: Path) -> None:
    """Copy the run folder without what `harness report` rebuilds, then rebuild it there."""
    dst = out / src.name
    shutil.copytree(src, dst, ignore=lambda d, names: [n for n in names if Path(d) == src and n in OUTPUTS])
    proc = harness(["report", src.name], cwd=out)
    (out / CONSOLE / f"report-{src.name}.txt").write_text(with_trailer(proc), encoding="utf-8")
    status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    print(f"  report {src.name:<24} {status}", flush=True)


def render_pairs(runs: Path, out: Path) -> None:
    pairs_file = runs / "pairs.json"
    pairs = json.loads(pairs_file.read_text()) if pairs_file.exists() else []
    for p in pairs:
        base = ["compare", p["accepted"], p["candidate"], *p.get("args", [])]
        for suffix, extra in ((".txt", []), (".json", ["--json"])):
            proc = harness(base + extra, cwd=out)
            (out / COMPARE / f"{p['name']}{suffix}").write_text(with_trailer(proc), encoding="utf-8")
        print(f"  compare {p['name']:<28} exit {proc.returncode}  (expected: {p.get('expect', '?')})", flush=True)


def normalise(out: Path) -> dict[str, int]:
    """Replace what legitimately varies with the rendering: the render folder's own path (none of the outputs
    should hold it, since every harness call runs inside it on relative names; counted, so a change shows)."""
    counts: dict[str, int] = {}
    needles = sorted({str(out), str(out.resolve())}, key=len, reverse=True)
    for path in golden_files(out):
        text = path.read_text(encoding="utf-8")
        n = sum(text.count(s) for s in needles)
        if n:
            for s in needles:
                text = text.replace(s, RENDER_DIR_TOKEN)
            path.write_text(text, encoding="utf-8")
            counts[f"render folder path -> {RENDER_DIR_TOKEN}"] = counts.get(
                f"render folder path -> {RENDER_DIR_TOKEN}", 0) + n
    return counts


def cmd_render(args: argparse.Namespace) -> int:
    runs, out = args.runs.resolve(), args.out.resolve()
    if runs == out or out in runs.parents:
        raise SystemExit("golden render: OUT_DIR must be outside RUNS_DIR")
    folders = run_folders(runs)
    if not folders:
        raise SystemExit(f"golden render: {runs}: no run folders (folders with manifest.json); run `make` first")
    empty_dir(out, args.force)
    (out / COMPARE).mkdir()
    (out / CONSOLE).mkdir()
    who = harness_identity()
    print(f"rendering {len(folders)} run folders from {runs} into {out}\n  with {who['harness']} (git {who['git']})")
    print("pinned for every harness call: " + " ".join(f"{k}={v}" for k, v in PINNED_ENV.items()))
    for src in folders:
        render_run(src, out)
    render_pairs(runs, out)
    counts = normalise(out)
    if counts:
        print("normalisations applied: " + "; ".join(f"{k} ({n} occurrences)" for k, n in counts.items()))
    else:
        print("normalisations applied: none (no output held a time of rendering or the render folder's path)")
    (out / "_render.json").write_text(json.dumps({**who, "runs": str(runs), "pinned_env": PINNED_ENV,
                                                   "normalisations": counts}, indent=2) + "\n")
    return 0


# -- diff ----------------------------------------------------------------------------------------------------

def golden_files(out: Path) -> list[Path]:
    """The outputs point 6 names: each run's rebuilt tables and reports, and every compare output; plus the
    report command's console output (shown by diff, not gating)."""
    found = [p for run in run_folders(out) for p in (run / n for n in OUTPUTS) if p.exists()]
    for sub in (COMPARE, CONSOLE):
        if (out / sub).is_dir():
            found += sorted(p for p in (out / sub).iterdir() if p.is_file())
    return found


def first_differences(a: str, b: str, show: int) -> list[str]:
    la, lb = a.splitlines(), b.splitlines()
    diffs = [i for i in range(max(len(la), len(lb))) if i >= len(la) or i >= len(lb) or la[i] != lb[i]]
    out = [f"    {len(diffs)} differing lines of {len(la)} / {len(lb)}"]
    for i in diffs[:show]:
        x, y = (la[i] if i < len(la) else "<no line>"), (lb[i] if i < len(lb) else "<no line>")
        col = next((k for k, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
        lo = max(0, col - 60)
        out += [f"    line {i + 1}, column {col + 1}:",
                f"      A: {'…' if lo else ''}{x[lo:col + 100]}", f"      B: {'…' if lo else ''}{y[lo:col + 100]}"]
    return out


def kind_of(rel: str) -> str:
    """summary.csv, report.html, ... for a run's file; compare/ or _console/ for the others."""
    top, _, rest = rel.partition("/")
    return top + "/" if top in (COMPARE, CONSOLE) else rest


def cmd_diff(args: argparse.Namespace) -> int:
    a_root, b_root = args.a.resolve(), args.b.resolve()
    for root in (a_root, b_root):
        if not (root / "_render.json").exists():
            raise SystemExit(f"golden diff: {root}: not a render folder (no _render.json); run `render` first")
        info = json.loads((root / "_render.json").read_text())
        print(f"{root}: rendered with {info.get('harness')} (git {info.get('git')}); normalised: "
              f"{info.get('normalisations') or 'nothing'}")
    files_a = {p.relative_to(a_root).as_posix() for p in golden_files(a_root)}
    files_b = {p.relative_to(b_root).as_posix() for p in golden_files(b_root)}
    both = sorted(files_a & files_b)
    differ = [r for r in both if (a_root / r).read_bytes() != (b_root / r).read_bytes()]
    only_a, only_b = sorted(files_a - files_b), sorted(files_b - files_a)
    runs = {r.split("/")[0] for r in files_a | files_b if kind_of(r) in OUTPUTS}
    print(f"{len(runs)} runs, {len(files_a | files_b)} files: {len(both) - len(differ)} identical, {len(differ)} "
          f"differing, {len(only_a)} only in A, {len(only_b)} only in B")
    for kind in sorted({kind_of(r) for r in files_a | files_b}):
        n = sum(kind_of(r) == kind for r in files_a | files_b)
        bad = sum(kind_of(r) == kind for r in differ + only_a + only_b)
        note = "  (console of `harness report`: shown, not gating)" if kind == CONSOLE + "/" else ""
        print(f"  {kind:<14} {n - bad:>3} of {n:>3} identical{note}")
    for line in [f"only in A: {r}" for r in only_a] + [f"only in B: {r}" for r in only_b]:
        print(line)
    gating = [r for r in differ if kind_of(r) != CONSOLE + "/"]
    shown = (gating + [r for r in differ if r not in gating])[:args.files]
    for rel in shown:
        print(f"differs: {rel}")
        a = (a_root / rel).read_text(encoding="utf-8", errors="replace")
        b = (b_root / rel).read_text(encoding="utf-8", errors="replace")
        print("\n".join(first_differences(a, b, args.lines)))
    if len(differ) > len(shown):
        print(f"... and {len(differ) - len(shown)} more differing files (--files N shows more)")
    failed = bool(gating or only_a or only_b)
    print("result: " + ("DIFFERENT" if failed else "identical"))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="write the varied run folders (and pairs.json) with the current harness")
    mk.add_argument("out", type=Path, metavar="OUT_DIR")
    mk.add_argument("--force", action="store_true", help="replace a runs folder golden.py made before")
    rd = sub.add_parser("render", help="rebuild every run's tables and reports, and the compare outputs")
    rd.add_argument("runs", type=Path, metavar="RUNS_DIR")
    rd.add_argument("out", type=Path, metavar="OUT_DIR")
    rd.add_argument("--force", action="store_true", help="replace a render folder golden.py made before")
    df = sub.add_parser("diff", help="exit 1 when two renders differ, naming the files and first differing lines")
    df.add_argument("a", type=Path, metavar="OUT_A")
    df.add_argument("b", type=Path, metavar="OUT_B")
    df.add_argument("--lines", type=int, default=3, help="differing lines shown per file (default 3)")
    df.add_argument("--files", type=int, default=20, help="differing files shown in detail (default 20)")
    args = p.parse_args(argv)
    return {"make": cmd_make, "render": cmd_render, "diff": cmd_diff}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
