"""Evaluation harness that tells a team whether fine-tuning an LLM is worth it.

    import harness
    run = harness.run("configs/demo.yaml", limit=20, variants=["baseline", "rag"])
    run.summary, run.records
    harness.compare(harness.load_run("results/accepted"), run)
    harness.merge("results/shard-1", "results/shard-2", out="results/full")

The API is imported on first use, so `harness --help` and the CLI's light commands start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Run", "RunOptions", "compare", "load_run", "merge", "run", "__version__"]

if TYPE_CHECKING:
    from harness.api import Run, compare, load_run, merge, run
    from harness.runner.runner import RunOptions


def __getattr__(name: str) -> Any:
    if name in ("Run", "compare", "load_run", "merge", "run"):
        from harness import api

        return getattr(api, name)
    if name == "RunOptions":
        from harness.runner.runner import RunOptions

        return RunOptions
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
