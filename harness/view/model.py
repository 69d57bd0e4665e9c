"""What the page shows, built from one run (and optionally the accepted run it is compared with).

Items are paired by id across the two runs. A *column* is one variant of one run; the page filters, counts
and sorts on compact per-column arrays (`rows()`), and asks for text only for what it shows: the snippets of
the rows on screen (`snippets`), one item in full (`item`), the items matching a search (`search`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.view.data import Cell, RunData
from harness.view.detail import clean, conversation, record_detail
from harness.view.gate import gate_summary

PRESENT = 32  # flag: the column has a record for the item
MAX_FACET_VALUES = 50
SNIPPET = {"input": 160, "expected": 100, "answer": 90}
SCALARS = {True: "true", False: "false"}


@dataclass
class Column:
    run: int  # 0: the run viewed; 1: the accepted run
    variant: str

    @property
    def key(self) -> str:
        return f"{self.run}:{self.variant}"


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(f"{k}: {text_of(v)}" for k, v in value.items())
    return json.dumps(value, ensure_ascii=False, default=str)


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class ViewModel:
    def __init__(self, run_dir: Path, other_dir: Path | None = None, *, max_drop: float = 0.02,
                 alpha: float = 0.05):
        self.runs = [RunData(run_dir)] + ([RunData(other_dir)] if other_dir is not None else [])
        self.columns = [Column(r, v) for r, run in enumerate(self.runs) for v in run.variants]
        ids = list(dict.fromkeys(i for run in self.runs for _, i in run.cells))
        # the eval set's order where it is known (records are written in the order calls finish)
        order = {item_id: n for n, item_id in enumerate(ids)}
        self.ids: list[str] = sorted(ids, key=lambda i: (self._position(i), order[i]))
        self.index = {item_id: n for n, item_id in enumerate(self.ids)}
        self._search_text: list[str] | None = None
        self._search_lock = threading.Lock()
        self.gate = gate_summary(self.runs, self.ids, max_drop=max_drop, alpha=alpha) if other_dir else None

    def _position(self, item_id: str) -> float:
        info = self.runs[0].items.get(item_id) or (self.runs[-1].items.get(item_id))
        return info.position if info is not None and info.position is not None else float("inf")

    def cells(self, col: Column, item_id: str) -> list[Cell]:
        return list(self.runs[col.run].cells.get((col.variant, item_id), {}).values())

    # -- the compact arrays the page filters and sorts on ---------------------------------------------------

    def column_arrays(self, col: Column) -> dict[str, Any]:
        score, flags, cost, lat, reps = [], [], [], [], []
        by_item = {i: cs for (v, i), cs in self.runs[col.run].cells.items() if v == col.variant}
        for item_id in self.ids:
            cs = by_item.get(item_id)
            if not cs:
                score.append(None)
                flags.append(0)
                cost.append(None)
                lat.append(None)
                reps.append(0)
                continue
            f = PRESENT
            for c in cs.values():
                f |= c.flags
            flags.append(f)
            score.append(_mean([c.score for c in cs.values()]))
            cost.append(_mean([c.cost for c in cs.values()]))
            lat.append(_mean([c.latency for c in cs.values()]))
            reps.append(len(cs))
        graded = any(s is not None and s not in (0.0, 1.0) for s in score)
        return {"key": col.key, "run": col.run, "variant": col.variant, "graded": graded, "score": score,
                "flags": flags, "cost": cost, "latency": lat, "repeats": reps}

    def facets(self) -> list[dict[str, Any]]:
        """Fields with few distinct values (labels, products, teams): expected, input, metadata, each
        column's parsed answer. Per item the index of its value, -1 where it has none."""
        sources: list[tuple[str, Any]] = []
        for part in ("expected", "input", "metadata"):
            sources.append((part, [self._item_info(i, part) for i in self.ids]))
        for col in self.columns:
            label = col.variant + (" (accepted)" if col.run else "")
            sources.append((f"answer of {label}", [self._parsed(col, i) for i in self.ids]))
        out = []
        for prefix, values in sources:
            keys = dict.fromkeys(k for v in values if isinstance(v, dict) for k in v)
            for k in keys:
                facet = self._facet(f"{prefix}.{k}", [v.get(k) if isinstance(v, dict) else None for v in values])
                if facet is not None:
                    out.append(facet)
        return out

    def _item_info(self, item_id: str, part: str) -> Any:
        for run in self.runs:
            info = run.items.get(item_id)
            if info is not None and (part != "input" or info.source == "evalset"):
                return getattr(info, part)
        return None

    def _parsed(self, col: Column, item_id: str) -> Any:
        cs = self.cells(col, item_id)
        return cs[0].parsed if cs else None

    @staticmethod
    def _facet(name: str, values: list[Any]) -> dict[str, Any] | None:
        table: dict[str, int] = {}
        idx = []
        for v in values:
            if v is None or isinstance(v, dict | list) or (isinstance(v, str) and len(v) > 80):
                idx.append(-1)
                continue
            s = v if isinstance(v, str) else SCALARS.get(v) if isinstance(v, bool) else json.dumps(v)
            if s not in table:
                if len(table) >= MAX_FACET_VALUES:
                    return None
                table[s] = len(table)
            idx.append(table[s])
        if not table or len(table) == sum(1 for i in idx if i >= 0) > 1:
            return None  # no values, or a different value per item (an id): not a filter
        return {"name": name, "values": list(table), "idx": idx}

    def meta(self) -> dict[str, Any]:
        runs = []
        for r, run in enumerate(self.runs):
            m = run.manifest
            runs.append({"name": run.name, "path": str(run.path), "role": "accepted" if r else "viewed",
                         "status": m.status, "primary": m.scoring.primary, "evalset": m.evalset.name,
                         "input_note": run.input_note, "models": {v: m.variant(v).model_id for v in run.variants}})
        return clean({"runs": runs, "items": len(self.ids), "gate": self.gate})

    def rows(self) -> dict[str, Any]:
        # numbers from data._num (finite or None) and strings: nothing for `clean` to do on 100,000 items
        return {"ids": self.ids, "columns": [self.column_arrays(c) for c in self.columns], "facets": self.facets()}

    # -- text, on demand ------------------------------------------------------------------------------------

    def _input_text(self, item_id: str) -> str:
        """The input's values (its field names aside), for the list and the search."""
        for run in self.runs:
            info = run.items.get(item_id)
            if info is not None and info.input is not None:
                value = info.input
                return " · ".join(text_of(v) for v in value.values()) if isinstance(value, dict) else text_of(value)
        return ""

    def _expected(self, item_id: str) -> Any:
        for run in self.runs:
            info = run.items.get(item_id)
            if info is not None:
                return info.expected
        return None

    def snippets(self, indices: list[int]) -> list[list[Any]]:
        out = []
        for n in indices:
            if not 0 <= n < len(self.ids):
                out.append(None)
                continue
            item_id = self.ids[n]
            answers = []
            for col in self.columns:
                cs = self.cells(col, item_id)
                answers.append(_short(cs[0].answer, SNIPPET["answer"]) if cs else None)
            out.append([_short(self._input_text(item_id), SNIPPET["input"]),
                        _short(text_of(self._expected(item_id)), SNIPPET["expected"]), answers])
        return out

    def search_text(self, n: int) -> str:
        item_id = self.ids[n]
        parts = [item_id, self._input_text(item_id), text_of(self._expected(item_id))]
        parts += [c.answer for col in self.columns for c in self.cells(col, item_id)]
        return "\n".join(parts).lower()

    def build_search_index(self) -> list[str]:
        """Each item's id, input, expected answer and answers, lower case; built once (the server starts it in
        the background, so the first search does not wait for it)."""
        with self._search_lock:
            if self._search_text is None:
                self._search_text = [self.search_text(n) for n in range(len(self.ids))]
            return self._search_text

    def search(self, query: str) -> list[int]:
        """Items whose id, input, expected answer or any answer contains every word of the query."""
        words = query.lower().split()
        if not words:
            return list(range(len(self.ids)))
        texts = self.build_search_index()
        return [n for n, text in enumerate(texts) if all(w in text for w in words)]

    def item(self, n: int) -> dict[str, Any]:
        if not 0 <= n < len(self.ids):
            raise HarnessError(f"item {n}: no such item (0..{len(self.ids) - 1})")
        item_id = self.ids[n]
        info = next((run.items[item_id] for run in self.runs if item_id in run.items), None)
        cols = []
        for col in self.columns:
            run = self.runs[col.run]
            recs = [run.record(c) for c in sorted(self.cells(col, item_id), key=lambda c: c.repeat)]
            cols.append([record_detail(r) for r in recs if r is not None] or None)
        return clean({"index": n, "id": item_id, "input": info.input if info else None,
                      "input_source": info.source if info else "none",
                      "turns": conversation(info.input) if info else None,
                      "expected": info.expected if info else None, "metadata": info.metadata if info else {},
                      "cols": cols})
