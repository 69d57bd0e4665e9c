"""Lifecycle dates in the price table: when a model retires, until when new fine-tuning jobs can be created, with
their sources; a fine-tune inherits its base's; `harness prices` shows them; validate and run warn within 90 days."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from harness.cli import main
from harness.models.lifecycle import lifecycle_of, retirement_warning
from harness.models.pricing import PriceTable
from tests.conftest import TEST_TODAY, make_config, right_answer
from tests.fakes.openai_server import FakeOpenAIServer

FT_NANO = "ft:gpt-4.1-nano-2025-04-14:acme::abc123"


def test_builtin_table_dates_and_sources():
    table = PriceTable.load()
    nano = lifecycle_of(table, "gpt-4.1-nano")
    assert nano.retires == dt.date(2026, 10, 23) and nano.row == "gpt-4.1-nano"
    assert "deprecations" in nano.retires_source and "2026-04-22" in nano.retires_source
    assert nano.new_jobs.closes == dt.date(2027, 1, 6)
    assert nano.new_jobs_close == dt.date(2026, 10, 23)  # no new job on a base that no longer exists
    assert [s.closes for s in nano.stages] == ["2026-05-07", "2026-07-02", "2027-01-06"]
    assert "posted 2026-05-07" in nano.new_jobs.source
    # a dated snapshot listed under a row takes the row's dates; the first gpt-4o snapshot has its own
    assert lifecycle_of(table, "gpt-4o-2024-08-06").retires == dt.date(2027, 1, 14)
    assert lifecycle_of(table, "gpt-4o-2024-05-13").retires == dt.date(2026, 10, 23)
    assert lifecycle_of(table, "gpt-4o-2024-05-13").new_jobs is None  # not fine-tunable per the table
    assert lifecycle_of(table, "gpt-5.4").retires is None  # none announced: no date is guessed
    assert lifecycle_of(table, "my-llama").row is None
    for name, e in table.entries.items():  # every date names a dated public source
        if e.retires:
            assert re.search(r"\d{4}-\d{2}-\d{2}", e.retires_source) and "deprecations" in e.retires_source, name


def test_a_fine_tune_inherits_its_base_models_dates():
    table = PriceTable.load()
    ft = lifecycle_of(table, FT_NANO)
    assert ft.fine_tuned and ft.base == "gpt-4.1-nano-2025-04-14" and ft.row == "gpt-4.1-nano"
    assert ft.retires == dt.date(2026, 10, 23)
    assert ft.can_retrain(dt.date(2026, 10, 22)) is True and ft.can_retrain(dt.date(2026, 10, 23)) is False
    mini = lifecycle_of(table, "ft:gpt-4o-mini-2024-07-18:acme::x")
    assert mini.retires == dt.date(2027, 1, 14) and mini.new_jobs_close == dt.date(2027, 1, 6)
    assert [s.who for s in mini.closed_for_some(dt.date(2026, 8, 1))] == [
        "organisations that had never fine-tuned",
        "organisations without inference on a fine-tuned model in the past 60 days"]


def test_a_pricing_file_adds_dates_and_old_files_still_load(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("models:\n  my-model: {input: 1, output: 2}\n")
    assert lifecycle_of(PriceTable.load(old), "my-model").retires is None
    new = tmp_path / "new.yaml"
    new.write_text(
        "models:\n  my-model:\n    input: 1\n    output: 2\n    retires: '2027-03-01'\n"
        "    retires_source: 'vendor notice, 2026-11-30'\n"
        "    fine_tuned: {input: 2, output: 4, new_jobs: {stages: [{closes: '2026-12-31'}], source: 'vendor, 2026-11-30'}}\n")
    life = lifecycle_of(PriceTable.load(new), "ft:my-model:org::x")
    assert life.retires == dt.date(2027, 3, 1) and life.new_jobs_close == dt.date(2026, 12, 31)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  my-model: {input: 1, output: 2, retires: 'March 2027'}\n")
    assert main(["prices", "--pricing", str(bad)]) == 2


@pytest.mark.parametrize("model, today, expected", [
    ("gpt-4o-mini", dt.date(2026, 12, 5), "gpt-4o-mini retires on 2027-01-14, in 40 days ("),
    ("gpt-4.1-nano", dt.date(2026, 12, 5), "gpt-4.1-nano retired on 2026-10-23 (43 days before 2026-12-05; "),
    (FT_NANO, dt.date(2026, 9, 1), f"{FT_NANO} is a fine-tune of gpt-4.1-nano-2025-04-14, which retires on "
                                   "2026-10-23, in 52 days ("),
    ("gpt-4o-mini", dt.date(2026, 6, 1), None),  # 227 days away
    ("gpt-4o-mini", None, None),  # the suite's day, TEST_TODAY
])
def test_retirement_warning_within_90_days(model, today, expected):
    text = retirement_warning(lifecycle_of(PriceTable.load(), model), today)
    if expected is None:
        assert text is None
    else:
        assert text.startswith(expected) and "OpenAI API deprecations page" in text


def test_prices_shows_retirement_and_fine_tuning_columns(capsys):
    assert main(["prices", "--today", "2026-12-05"]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0]
    assert "retires" in head and "new fine-tunes until" in head
    nano = next(line for line in out.splitlines() if line.startswith("gpt-4.1-nano "))
    assert "2026-10-23 (retired) [" in nano and "2026-10-23 (closed) [" in nano
    mini = next(line for line in out.splitlines() if line.startswith("gpt-4o-mini "))
    assert "2027-01-14 [" in mini and "2027-01-06 [" in mini and "(closed)" not in mini
    assert "posted 2026-05-07" in out and "from 2026-07-02 for organisations without inference" in out
    assert main(["prices", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["gpt-4o"]["retires"] == "2027-01-14" and rows["gpt-4o"]["new_fine_tunes_until"] == "2027-01-06"
    assert rows["gpt-4o"]["new_fine_tunes_open"] is True  # on the suite's day
    assert "deprecations" in rows["gpt-4o"]["retires_source"] and rows["gpt-5.4"]["retires"] is None


def _config(tmp_path, evalset_dir, base_url):
    models = {m: {"provider": "openai-compatible", "base_url": base_url, "model": mid}
              for m, mid in (("mini", "gpt-4o-mini"), ("nano", "gpt-4.1-nano"), ("ft", FT_NANO), ("new", "gpt-5.4"))}
    variants = [{"name": "a", "kind": "baseline", "model": "mini"}, {"name": "b", "kind": "baseline", "model": "mini"},
                {"name": "c", "kind": "baseline", "model": "nano"}, {"name": "d", "kind": "baseline", "model": "ft"},
                {"name": "e", "kind": "baseline", "model": "new"}]
    return make_config(tmp_path, evalset_dir, base_url, variants=variants, models=models)


def test_validate_and_run_warn_once_per_model(tmp_path, evalset_dir, capsys):
    assert TEST_TODAY < dt.date(2026, 1, 1)
    with FakeOpenAIServer(right_answer, models=["gpt-4o-mini", "gpt-4.1-nano", FT_NANO, "gpt-5.4"]) as srv:
        cfg = _config(tmp_path, evalset_dir, srv.base_url)
        assert main(["validate", str(cfg)]) == 0
        assert "retire" not in capsys.readouterr().out  # far from every date on the suite's day
        assert main(["validate", str(cfg), "--today", "2026-10-01"]) == 0
        out = capsys.readouterr().out
        assert out.count("warning: gpt-4o-mini retires on 2027-01-14, in 105 days") == 0  # beyond 90 days
        assert out.count("warning: gpt-4.1-nano retires on 2026-10-23, in 22 days") == 1
        assert out.count(f"warning: {FT_NANO} is a fine-tune of gpt-4.1-nano-2025-04-14, which retires on "
                         "2026-10-23, in 22 days") == 1
        assert main(["run", str(cfg), "--no-progress", "--out", str(tmp_path / "run"), "--today", "2026-12-05"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: gpt-4o-mini retires on 2027-01-14, in 40 days") == 1  # two variants, one line
    assert err.count("warning: gpt-4.1-nano retired on 2026-10-23 (43 days before 2026-12-05") == 1
    assert err.count(f"{FT_NANO} is a fine-tune of gpt-4.1-nano-2025-04-14, which retired on 2026-10-23") == 1
    assert "gpt-5.4 retire" not in err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert sum("retire" in w for w in manifest["price_warnings"]) == 3


def test_a_pricing_files_row_keeps_the_builtin_dates(tmp_path):
    prices = tmp_path / "p.yaml"
    prices.write_text("models:\n  gpt-4.1-nano:\n    input: 0.1\n    output: 0.4\n    fine_tuned: {input: 0.2, output: 0.8}\n")
    table = PriceTable.load(prices)
    assert table.lookup("gpt-4.1-nano").source.startswith("gpt-4.1-nano,")  # its price is the file's
    life = lifecycle_of(table, "ft:gpt-4.1-nano:acme::x")  # the file's row lists no snapshots
    assert life.retires == dt.date(2026, 10, 23) and life.new_jobs.closes == dt.date(2027, 1, 6)
