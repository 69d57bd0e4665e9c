"""Leakage between the held-out split and everything the model may see: train, the few-shot pool, RAG docs.

A held-out item that also sits in the training data or the knowledge base inflates every variant that sees
it, which is exactly the comparison this tool exists to make fair.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from harness.data.conversation import value_words
from harness.data.evalset import EvalSet
from harness.data.text import normalise
from harness.records import EvalItem

NEAR_DUP_JACCARD = 0.85
K = TypeVar("K")
DOC_CONTAINMENT = 0.9


def shingles(norm: str, n: int = 3) -> set[tuple[str, ...]]:
    words = norm.split()
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


@dataclass
class Finding:
    test_id: str
    other: str  # "train" | "docs"
    other_id: str
    kind: str  # exact | near
    similarity: float


def item_text(item: EvalItem) -> str:
    """The item's own words (its input values; a conversation's turns), without the template text every item
    shares."""
    return " ".join(value_words(v) for v in item.input.values())


def check_leakage(ev: EvalSet) -> list[Finding]:
    """Test items identical to or nearly the same as a train item or inside a document."""
    return train_findings(ev) + doc_findings(ev)


def train_findings(ev: EvalSet) -> list[Finding]:
    """Test items whose words repeat a train item's: identical after `normalise`, or a near-duplicate."""
    findings: list[Finding] = []
    test_norm = {i.id: normalise(item_text(i)) for i in ev.test}
    train_norm = {i.id: normalise(item_text(i)) for i in ev.train}
    exact: dict[str, list[str]] = defaultdict(list)
    for tid, norm in train_norm.items():
        exact[norm].append(tid)
    # Near-duplicates: Jaccard over word sets. An inverted index of words finds candidates without
    # comparing every pair; words shared by many items carry no evidence and are not indexed.
    train_words = {tid: set(n.split()) for tid, n in train_norm.items()}
    index: dict[str, list[str]] = defaultdict(list)
    for tid, words in train_words.items():
        for w in words:
            index[w].append(tid)
    common_limit = max(50, len(train_words) // 20)
    for test_id, norm in test_norm.items():
        for tid in exact.get(norm, []):
            findings.append(Finding(test_id, "train", tid, "exact", 1.0))
        words = set(norm.split())
        if len(words) < 3:
            continue
        shared: Counter[str] = Counter()
        for w in words:
            postings = index.get(w)
            if postings and len(postings) <= common_limit:
                shared.update(postings)
        for tid, _ in shared.most_common(20):
            if norm == train_norm[tid]:
                continue
            other = train_words[tid]
            k = len(words & other)
            jac = k / (len(words) + len(other) - k)
            if jac >= NEAR_DUP_JACCARD:
                findings.append(Finding(test_id, "train", tid, "near", round(jac, 3)))
    return findings


def doc_findings(ev: EvalSet) -> list[Finding]:
    """Test items whose text sits (nearly) whole inside a knowledge-base document."""
    findings: list[Finding] = []
    if not ev.docs:
        return findings
    test_norm = {i.id: normalise(item_text(i)) for i in ev.test}
    doc_norm = {d.id: normalise(d.text) for d in ev.docs}
    doc_sh = {d: shingles(n) for d, n in doc_norm.items()}
    for test_id, norm in test_norm.items():
        if len(norm.split()) < 6:  # a short question inside a long document is not leakage
            continue
        sh = shingles(norm)
        for did, dn in doc_norm.items():
            if norm in dn:
                findings.append(Finding(test_id, "docs", did, "exact", 1.0))
                continue
            contained = len(sh & doc_sh[did]) / len(sh)
            if contained >= DOC_CONTAINMENT:
                findings.append(Finding(test_id, "docs", did, "near", round(contained, 3)))
    return findings


def leaked_train_items(ev: EvalSet) -> dict[str, str]:
    """Train item id -> the test item it repeats or nearly repeats (the first found), in train order.

    These are left out of the few-shot pool and the fine-tuning data unless the user keeps them
    (`run.keep_leaked: true`, `harness finetune --keep-leaked`). Computed once per loaded eval set.
    """
    cached = getattr(ev, "_leaked_train_items", None)
    if cached is None:
        first: dict[str, str] = {}
        for f in train_findings(ev):
            first.setdefault(f.other_id, f.test_id)
        cached = {i.id: first[i.id] for i in ev.train if i.id in first}
        ev._leaked_train_items = cached  # type: ignore[attr-defined]
    return dict(cached)


def describe_pairs(pairs: dict[str, str], limit: int = 5) -> str:
    """"r7~t3, r9~t12, ..." for messages: train id ~ the test item it repeats."""
    shown = ", ".join(f"{a}~{b}" for a, b in list(pairs.items())[:limit])
    return shown + (", ..." if len(pairs) > limit else "")


def summarize_findings(findings: list[Finding], ev: EvalSet, few_shot_pool: set[str] | None = None) -> list[str]:
    """Readable lines: counts per source and a few examples."""
    lines = []
    groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        groups[(f.other, f.kind)].append(f)
        if few_shot_pool is not None and f.other == "train" and f.other_id in few_shot_pool:
            groups[("few-shot pool", f.kind)].append(f)
    for (other, match), fs in sorted(groups.items()):
        items = len({f.test_id for f in fs})
        examples = ", ".join(f"{f.test_id}~{f.other_id}" for f in fs[:3])
        lines.append(f"leakage: {items} test item(s) {'identical to' if match == 'exact' else 'near-duplicates of'} "
                     f"{other} ({examples}{', ...' if len(fs) > 3 else ''})")
    return lines


def repeated_texts(texts: Iterable[tuple[K, str]]) -> list[list[K]]:
    """Groups of keys whose (already normalised) texts are the same, in first-seen order; empty texts are not
    grouped (they are reported as empty)."""
    groups: dict[str, list[K]] = defaultdict(list)
    for key, text in texts:
        if text:
            groups[text].append(key)
    return [keys for keys in groups.values() if len(keys) > 1]


def text_warnings(ev: EvalSet, limit: int = 5) -> list[str]:
    """Items of one split with no input text, or with the same text as another item of that split after
    `normalise`: each copy is scored, so a repeat weighs twice. (The same text in test and train is leakage,
    reported by `summarize_findings`.)"""
    lines = []
    for name, items in (("test.jsonl", ev.test), ("train.jsonl", ev.train)):
        empty = [i.id for i in items if not item_text(i).strip()]
        if empty:
            lines.append(f"{name}: {len(empty)} item(s) with empty input text ({', '.join(empty[:limit])}"
                         f"{', ...' if len(empty) > limit else ''}): fill them in or remove them")
        groups = repeated_texts((i.id, normalise(item_text(i))) for i in items)
        if groups:
            shown = "; ".join(" = ".join(g) for g in groups[:limit]) + ("; ..." if len(groups) > limit else "")
            lines.append(f"{name}: {len(groups)} text(s) repeated in the split ({shown}): each copy is scored; "
                         "remove the repeats unless they are meant")
    return lines
