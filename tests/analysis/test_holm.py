"""Issue 22.5: several variants compared with one baseline get Holm-adjusted p-values, in summary.csv (beside
the raw one), the tables, the decision summary and the gate's accuracy-drop rule."""

import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from harness.analysis.compare import Verdict, compare_runs
from harness.analysis.stats import holm
from harness.report.gate_text import format_text
from tests.analysis.test_compare import do_run, make_evalset, scripted
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAIServer

MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]


def test_holm_by_hand_and_against_statsmodels():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> made monotone: 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.01, None, 0.04]) == pytest.approx([0.02, None, 0.04])  # a missing p is not in the family
    assert holm([0.2]) == [0.2] and holm([]) == [] and holm([None]) == [None]
    ps = [0.001, 0.2, 0.013, 0.04, 0.5, 0.0125]
    assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))


def _config(tmp_path, ev, url):
    models = {f"m{k}": {"provider": "openai-compatible", "base_url": url, "model": m, "max_retries": 0}
              for k, m in enumerate(MODELS)}
    variants = [{"name": "baseline", "kind": "baseline", "model": "m0"},
                {"name": "bigger", "kind": "baseline", "model": "m1"},
                {"name": "newer", "kind": "baseline", "model": "m2"}]
    return make_config(tmp_path, ev, url, models=models, variants=variants)


def _run(tmp_path, ev, script, out):
    with FakeOpenAIServer(script, models=MODELS) as srv:
        return do_run(_config(tmp_path, ev, srv.base_url), tmp_path, out).run_dir


def test_holm_in_summary_tables_decision_and_gate(tmp_path):
    ev = make_evalset(tmp_path, n_test=30)
    accepted = _run(tmp_path, ev, scripted(), "accepted")
    # candidate: baseline and bigger each wrong on 6 items (different ones), newer on none
    candidate = _run(tmp_path, ev, scripted({"gpt-4o-mini": set(range(6)), "gpt-4o": set(range(6, 12))}),
                     "candidate")

    df = pd.read_csv(candidate / "summary.csv").set_index("variant")
    # vs baseline: bigger 6 right->wrong and 6 wrong->right (McNemar p = 1), newer 6 wrong->right (p = 2/64)
    assert df.loc["bigger", "accuracy_p"] == pytest.approx(1.0)
    assert df.loc["newer", "accuracy_p"] == pytest.approx(2 / 64)
    expected = multipletests([1.0, 2 / 64], method="holm")[1]
    assert [df.loc["bigger", "accuracy_p_holm"], df.loc["newer", "accuracy_p_holm"]] == pytest.approx(list(expected))
    assert df.loc["newer", "accuracy_p_holm"] == pytest.approx(0.0625)
    assert df.loc["newer", "comparisons"] == 2 and pd.isna(df.loc["baseline", "accuracy_p_holm"])
    summary_md = (candidate / "summary.md").read_text()
    assert "p=0.062 (Holm)" in summary_md and "p=0.031" not in summary_md  # the adjusted p, not the raw one
    assert "Holm-adjusted over those comparisons" in summary_md
    report = (candidate / "report.md").read_text()
    assert ("Against baseline on the same items, with p-values Holm-adjusted over the 2 comparisons: bigger +0.0 pp "
            "(p = 1, not significant); newer +20.0 pp (p = 0.0625, not significant).") in report
    assert "p=0.062 (Holm)" in (candidate / "report.html").read_text()

    # the gate compares all three variants: baseline and bigger each dropped 20 pp with McNemar p = 2/64 < 0.05,
    # which fails alone; Holm over the three (2/64, 2/64, 1) gives 3 * 2/64 = 0.094 for both, so no failure
    result = compare_runs(accepted, candidate)
    drops = {c.candidate_variant: c.metrics[0] for c in result.comparisons}
    assert drops["baseline"].p_value == pytest.approx(2 / 64)
    assert drops["baseline"].p_adjusted == pytest.approx(3 * 2 / 64) and drops["baseline"].comparisons == 3
    assert drops["bigger"].p_adjusted == pytest.approx(3 * 2 / 64)
    assert drops["baseline"].verdict is Verdict.INSIGNIFICANT_DROP and not result.failed
    text = format_text(result)
    assert "Holm-adjusted over 3 variants p=0.0938" in text and "(H: p Holm-adjusted over the 3 variants" in text
    # one variant alone is one test: its raw p decides, and the drop fails
    alone = compare_runs(accepted, candidate, variant="baseline")
    assert alone.comparisons[0].metrics[0].p_adjusted is None and alone.failed
