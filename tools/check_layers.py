#!/usr/bin/env python3
"""Lists every `harness.X` import of the harness and flags the ones that run up the flow (issue 19, point 5).

The flow, lowest first; a module may import its own layer or a lower one, never a higher one:

    0 base        records, errors, config, clock, redact, yaml_errors, numbers
    1 data        eval sets
    2 models, retrieval
    3 prompts, scoring
    4 run folder  harness/rundir
    5 runner
    6 analysis    returns numbers
    7 report      formats them
    8 view, finetune, api, cli, __main__, and the package's own __init__ (its lazy re-exports)

Every import counts, inside functions and under TYPE_CHECKING too. A bare `import harness` (for
`harness.__version__`) is not an import of the API. Exit 1 when an import runs up the flow or a module of the
harness is in no layer (add it to LAYERS).

Usage: check_layers.py [HARNESS_DIR] [--list]   (default: the harness next to this tools/ folder)
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

LAYERS: dict[str, int] = {
    **dict.fromkeys(("records", "errors", "config", "clock", "redact", "yaml_errors", "numbers"), 0),
    "variant_kinds": 0,  # the variant kinds' registry the config reads (issue 19, the kinds helper)
    "data": 1,
    "models": 2, "retrieval": 2,
    "prompts": 3, "scoring": 3,
    "rundir": 4,  # the run folder's own package (issue 19, the run-folder helper)
    "runner": 5,
    "analysis": 6,
    "report": 7,
    **dict.fromkeys(("view", "finetune", "api", "cli", "__main__", "__init__"), 8),
}
# Modules whose layer is not their package's: the provider classes and model-id rules the config's validation
# asks (issue 19: "the config asks the provider class"); they import nothing of the harness above the base layer.
MODULE_LAYERS = {"models.providers": 0, "models.model_ids": 0}
# Imports that run up the flow and are allowed, each with why.
ALLOWED: dict[tuple[str, str], str] = {
    ("models.providers.local", "models.local"): "the local provider starts the embedded server, importing it "
    "inside the method that starts it, only when a run uses a local model; models.local imports no config",
}
NAMES = {0: "base", 1: "data", 2: "models/retrieval", 3: "prompts/scoring", 4: "run folder", 5: "runner",
         6: "analysis", 7: "report", 8: "view/finetune/api/cli"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "analysis.compare"
    target: str  # the imported module, e.g. "report.format"
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def layer(module: str) -> int | None:
    for name, level in MODULE_LAYERS.items():
        if module == name or module.startswith(name + "."):
            return level
    return LAYERS.get(module.split(".")[0])


def imports(path: Path, root: Path, known: set[str]) -> list[Import]:
    """Every harness module this file imports, resolved to a module of the tree (`from harness.x import y`
    names module x.y when there is one, else x)."""
    me = module_name(path, root)
    out: dict[Import, None] = {}
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if not name.startswith("harness."):
                continue  # a bare `import harness` reads the package's metadata (__version__)
            target = name.removeprefix("harness.")
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target != me:
                out[Import(me, target, node.lineno)] = None
    return list(out)


def check(root: Path) -> tuple[list[Import], list[str]]:
    """(every import, the problems: upward imports and modules in no layer)."""
    files = sorted(root.rglob("*.py"))
    known = {module_name(p, root) for p in files}
    found = [imp for p in files for imp in imports(p, root, known)]
    problems = [f"harness/{top}: in no layer; add it to LAYERS in tools/check_layers.py"
                for top in sorted({m.split(".")[0] for m in known if layer(m) is None})]
    for imp in found:
        here, there = layer(imp.module), layer(imp.target)
        if here is None or there is None or there <= here or (imp.module, imp.target) in ALLOWED:
            continue
        problems.append(f"harness.{imp.module} (line {imp.line}, {NAMES[here]}) imports harness.{imp.target} "
                        f"({NAMES[there]}): up the flow")
    return found, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("harness_dir", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent / "harness")
    ap.add_argument("--list", action="store_true", help="list every harness import with both layers")
    args = ap.parse_args(argv)
    found, problems = check(args.harness_dir)
    if args.list:
        for imp in found:
            print(f"{layer(imp.module)} harness.{imp.module}:{imp.line} -> {layer(imp.target)} harness.{imp.target}")
    for p in problems:
        print(p)
    print(f"{len(found)} harness imports checked: " + (f"{len(problems)} problems" if problems else "all downward"),
          file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
