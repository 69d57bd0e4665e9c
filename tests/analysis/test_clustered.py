"""Issue 22.3: intervals and paired tests take the item (with repeats) or the declared cluster as their unit.

Coverage by simulation: over 2,000 seeded simulated runs the 95% intervals hold the true mean in 93–97% of them,
with repeats, with strongly correlated clusters (where the naive record- or item-level interval covers far
less), and for the paired difference with and without clusters."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness.analysis import clusters as cl
from harness.analysis.stats import (
    item_outcomes,
    outcomes_frame,
    paired_bootstrap,
    paired_compare,
    sign_flip_test,
)
from harness.records import Record

RUNS = 2000


def _coverage(lo: np.ndarray, hi: np.ndarray, truth: float) -> float:
    return float(((lo <= truth) & (truth <= hi)).mean())


def _wilson_arrays(p: np.ndarray, n: int, z: float = 1.959963984540054) -> tuple[np.ndarray, np.ndarray]:
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def test_share_interval_covers_with_repeats():
    """60 items of varied difficulty, 3 repeats each: the item is the unit."""
    rng = np.random.default_rng(22)
    items, repeats = 60, 3
    truth = 2 / 3  # mean of Beta(2, 1)
    difficulty = rng.beta(2, 1, size=(RUNS, items))
    values = (rng.random((RUNS, items, repeats)) < difficulty[..., None]).reshape(RUNS, items * repeats)
    lay = cl.layout(np.repeat(np.arange(items), repeats))
    lo, hi = cl.share_interval_arrays(values.astype(float), lay)
    assert 0.93 <= _coverage(lo, hi, truth) <= 0.97
    # counting the 180 records as independent under-covers: repeats of one item are alike
    naive_lo, naive_hi = _wilson_arrays(values.mean(axis=1), items * repeats)
    assert _coverage(naive_lo, naive_hi, truth) < 0.925
    # the Wilson interval over the 60 items (what the summary showed before) is needlessly wide
    old_lo, old_hi = _wilson_arrays(values.mean(axis=1), items)
    assert _coverage(old_lo, old_hi, truth) > 0.98


def test_share_interval_covers_with_strong_clusters_where_the_item_interval_does_not():
    """40 passages x 6 questions, a passage's questions alike (intra-cluster correlation about 0.5)."""
    rng = np.random.default_rng(7)
    passages, per = 40, 6
    truth = 0.6
    ease = rng.beta(0.6 * 1.0, 0.4 * 1.0, size=(RUNS, passages))  # mean 0.6, widely spread across passages
    values = (rng.random((RUNS, passages, per)) < ease[..., None]).reshape(RUNS, passages * per).astype(float)
    lay = cl.layout(np.repeat(np.arange(passages), per))
    lo, hi = cl.share_interval_arrays(values, lay)
    assert 0.93 <= _coverage(lo, hi, truth) <= 0.97
    # the interval over the 240 items as independent units (what stats did without clusters) covers far less
    naive_lo, naive_hi = _wilson_arrays(values.mean(axis=1), passages * per)
    assert _coverage(naive_lo, naive_hi, truth) < 0.75


def test_share_interval_without_clusters_is_wilson_and_ends_are_exact():
    values = np.array([1.0] * 8 + [0.0] * 2)
    lo, hi = cl.share_interval(values, range(10))  # every record its own cluster
    t9 = float(sps.t.ppf(0.975, 9))
    n_eff = 0.16 / (10 / 9 * 1.6 / 100)  # p(1-p) / clustered var = 9
    exp_lo, exp_hi = _wilson_arrays(np.array(0.8), n_eff, t9)
    assert (lo, hi) == pytest.approx((float(exp_lo), float(exp_hi)))
    assert cl.share_interval([1.0] * 6, ["a", "a", "b", "b", "c", "c"])[1] == 1.0
    assert cl.share_interval([0.0] * 6, ["a", "a", "b", "b", "c", "c"])[0] == 0.0
    assert cl.share_interval([1.0, 0.0], ["a", "a"]) is None  # one cluster: no interval


def test_paired_difference_covers_without_clusters():
    """100 items, one repeat: the item bootstrap (unchanged) covers the true difference."""
    rng = np.random.default_rng(3)
    n, truth = 100, 0.10
    # per item: candidate - baseline is -1, 0 or +1 with probabilities 0.15, 0.60, 0.25
    u = rng.random((RUNS, n))
    d = np.where(u < 0.15, -1.0, np.where(u < 0.75, 0.0, 1.0))
    hits = 0
    for row in d:
        _, lo, hi = paired_bootstrap(np.zeros(n), row)  # type: ignore[misc]
        hits += lo <= truth <= hi
    assert 0.93 <= hits / RUNS <= 0.97


def _clustered_differences(rng: np.random.Generator, clusters: int, per: int) -> np.ndarray:
    """Per item candidate - baseline (0/1 each) where the candidate helps on some passages and hurts on others:
    baseline right with 0.5, candidate right with 0.95 or 0.25 per passage (mean difference 0.10)."""
    cand_p = np.where(rng.random((RUNS, clusters)) < 0.5, 0.95, 0.25)[..., None]
    base = rng.random((RUNS, clusters, per)) < 0.5
    cand = rng.random((RUNS, clusters, per)) < cand_p
    return (cand.astype(float) - base.astype(float)).reshape(RUNS, clusters * per)


def test_paired_difference_covers_with_clusters_where_the_item_bootstrap_does_not():
    rng = np.random.default_rng(11)
    clusters, per, truth = 40, 8, 0.10
    d = _clustered_differences(rng, clusters, per)
    lay = cl.layout(np.repeat(np.arange(clusters), per))
    _, lo, hi = cl.mean_interval_arrays(d, lay)
    assert 0.93 <= _coverage(lo, hi, truth) <= 0.97
    naive = 0
    for row in d[:500]:  # the item bootstrap ignoring the clusters (what paired_compare did before)
        _, nlo, nhi = paired_bootstrap(np.zeros(row.size), row)  # type: ignore[misc]
        naive += nlo <= truth <= nhi
    assert naive / 500 < 0.85


def _rec(variant: str, item: str, correct: bool) -> Record:
    return Record(item_id=item, variant=variant, model="m", model_id="m", request={}, raw_text="{}",
                  scores={"correct": correct, "format_valid": True})


def test_paired_compare_takes_the_declared_cluster_as_unit():
    rng = np.random.default_rng(5)
    ids = [f"q{k}" for k in range(40)]
    cluster_of = {i: f"p{k // 5}" for k, i in enumerate(ids)}  # 8 passages of 5 questions
    base = rng.random(40) < 0.5
    cand = rng.random(40) < 0.7
    recs = [_rec("a", i, bool(b)) for i, b in zip(ids, base, strict=True)]
    recs += [_rec("b", i, bool(c)) for i, c in zip(ids, cand, strict=True)]
    items = item_outcomes(outcomes_frame(recs, cluster_of))
    assert list(items.loc["a"]["cluster"][:6]) == ["p0"] * 5 + ["p1"]
    pr = paired_compare(items.loc["a"], items.loc["b"])
    d = cand.astype(float) - base.astype(float)
    sums = d.reshape(8, 5).sum(axis=1)
    se = math.sqrt(8 / 7 * ((sums - 5 * d.mean()) ** 2).sum() / 40**2)
    half = float(sps.t.ppf(0.975, 7)) * se
    assert pr.test == "cluster-sign-flip" and pr.clusters == 8 and pr.n == 40
    assert (pr.diff, pr.lo, pr.hi) == pytest.approx((d.mean(), d.mean() - half, d.mean() + half))
    assert pr.p_value == pytest.approx(sign_flip_test(sums).p_value)
    # without the map the items are the unit again: McNemar, as before
    plain = item_outcomes(outcomes_frame(recs))
    assert paired_compare(plain.loc["a"], plain.loc["b"]).test == "mcnemar"
    assert isinstance(items, pd.DataFrame)


def _clustered_set(tmp_path, per: int = 5):
    import json

    import yaml

    from tests.analysis.test_compare import make_evalset

    ev = make_evalset(tmp_path, n_test=30)
    task = yaml.safe_load((ev / "task.yaml").read_text())
    task["cluster"] = "metadata.passage"
    (ev / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    rows = [json.loads(x) for x in (ev / "test.jsonl").read_text().splitlines()]
    for k, r in enumerate(rows):
        r["metadata"] = {"passage": f"doc{k // per}"}
    (ev / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ev, rows


def test_declared_clusters_reach_the_manifest_summary_and_gate(tmp_path):
    from harness.analysis.compare import compare_runs
    from harness.rundir import RunFolder
    from tests.analysis.test_compare import scripted, two_runs

    ev, _ = _clustered_set(tmp_path)
    # the fine-tune gets passages doc0 and doc1 (items 0-9) wrong in the candidate run
    accepted, candidate = two_runs(tmp_path, scripted(), scripted({"ft:gpt-4o-mini-2024-07-18:acme::abc123":
                                                                   set(range(10))}), ev=ev)
    m = RunFolder.open(candidate).manifest
    assert m.clusters is not None and m.clusters.by == "metadata.passage"
    assert m.clusters.items["q000"] == "doc0" and m.clusters.items["q029"] == "doc5"
    row = pd.read_csv(candidate / "summary.csv").set_index("variant").loc["ft"]
    assert row["accuracy_test"] == "cluster-sign-flip" and row["paired_clusters"] == 6
    # 6 passages: summed differences -5, -5, 0, 0, 0, 0; of the 4 sign patterns of the two -5s, 2 reach |10|: p = 0.5
    assert row["accuracy_p"] == pytest.approx(sign_flip_test([-5, -5, 0, 0, 0, 0]).p_value) == pytest.approx(0.5)
    assert "clustered sign-flip" in (candidate / "summary.md").read_text()
    result = compare_runs(accepted, candidate)
    drop = result.comparisons[0].metrics[0]
    assert drop.test == "clustered sign-flip" and drop.p_value == pytest.approx(0.5) and not result.failed
    # the same drop with the items as units (no clusters declared) is significant: McNemar 2/2^10
    plain = item_outcomes(outcomes_frame([r for r in RunFolder.open(candidate).compact_records()]))  # type: ignore[arg-type]
    assert paired_compare(plain.loc["baseline"], plain.loc["ft"]).p_value == pytest.approx(2 / 1024)


def test_cluster_field_errors_name_the_file_and_item(tmp_path):
    import json

    from harness.data.evalset import load_evalset
    from harness.errors import EvalSetError

    ev, rows = _clustered_set(tmp_path)
    del rows[3]["metadata"]["passage"]
    (ev / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(EvalSetError, match=r"test.jsonl: item 'q003' has no metadata.passage \(task.yaml cluster: "):
        load_evalset(ev)
    (ev / "task.yaml").write_text((ev / "task.yaml").read_text().replace("metadata.passage", "passage"))
    with pytest.raises(EvalSetError, match="task.yaml.*cluster"):
        load_evalset(ev)
