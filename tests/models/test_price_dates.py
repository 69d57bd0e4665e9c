"""How old a price is, against which day: one seam (harness.clock) gives "today" to every date comparison, and
the built-in table names a public, dated source for every row."""

import datetime as dt
import json
import re

import pytest

from harness import clock
from harness.models.pricing import PriceTable, stale_warning
from tests.conftest import REPO, TEST_TODAY, make_config


def test_clock_gives_the_callers_day_else_the_system_day():
    assert clock.today() == TEST_TODAY  # the suite's day (tests/conftest.py fixed_today)
    assert clock.today(dt.date(2031, 5, 6)) == dt.date(2031, 5, 6)
    assert clock.parse_day(" 2026-12-05 ") == dt.date(2026, 12, 5)
    for bad in ("2026-13-01", "20261205", "2026-W49-6", "today", ""):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            clock.parse_day(bad)


def test_no_builtin_price_is_stale_on_the_suites_day():
    """Tests that do not ask for a price warning never get one, whatever the calendar says."""
    table = PriceTable.load()
    for name in table.entries:
        assert stale_warning(table.lookup(name)) is None, name
        assert stale_warning(table.lookup(f"ft:{name}:org::id")) is None, name


def _old_prices(tmp_path):
    prices = tmp_path / "dated-prices.yaml"
    prices.write_text("models:\n  gpt-4o-mini: {input: 0.15, output: 0.60, as_of: '2026-01-15', source: invoice}\n")
    return prices


def test_today_flag_dates_validate_run_and_prices(tmp_path, evalset_dir, fake_server, capsys):
    from harness.cli import main

    prices = _old_prices(tmp_path)
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, pricing=str(prices))
    warning = "the price of gpt-4o-mini dates from 2026-01-15 (324 days ago, more than 180)"
    assert main(["validate", str(cfg)]) == 0
    assert "dates from" not in capsys.readouterr().out  # 2026-01-15 is after the suite's day
    assert main(["validate", str(cfg), "--today", "2026-12-05"]) == 0
    assert warning in capsys.readouterr().out

    assert main(["run", str(cfg), "--no-progress", "--out", str(tmp_path / "fresh")]) == 0
    assert "dates from" not in capsys.readouterr().err
    assert main(["run", str(cfg), "--no-progress", "--out", str(tmp_path / "old"), "--today", "2026-12-05"]) == 0
    assert f"warning: {warning}" in capsys.readouterr().err
    manifest = json.loads((tmp_path / "old" / "manifest.json").read_text())
    dated = [w for w in manifest["price_warnings"] if "dates from" in w]  # besides: gpt-4o-mini retires 2027-01-14
    assert len(dated) == 1 and dated[0].startswith(warning)

    assert main(["prices", "--pricing", str(prices), "--json"]) == 0
    assert not {r["model"]: r for r in json.loads(capsys.readouterr().out)}["gpt-4o-mini"]["stale"]
    assert main(["prices", "--pricing", str(prices), "--json", "--today", "2026-12-05"]) == 0
    assert {r["model"]: r for r in json.loads(capsys.readouterr().out)}["gpt-4o-mini"]["stale"]


def test_python_api_takes_today(tmp_path, evalset_dir, fake_server, capsys):
    import harness

    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, pricing=str(_old_prices(tmp_path)))
    run = harness.run(cfg, out=tmp_path / "run", progress=False, today="2026-12-05")
    assert "2026-01-15 (324 days ago" in run.manifest.price_warnings[0]
    assert "dates from 2026-01-15" in capsys.readouterr().err


def test_a_bad_today_is_refused_by_the_parser(capsys):
    from harness.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["prices", "--today", "2026-12-32"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--today: expected a day as YYYY-MM-DD" in err and "Traceback" not in err


# -- sources ----------------------------------------------------------------------------------------------

def _sources(table: PriceTable, names):
    for name in names:
        e = table.entries[name]
        yield name, e.source, e.as_of
        if e.fine_tuned is not None:
            yield f"{name} fine-tuned", e.fine_tuned.source or e.source, e.fine_tuned.as_of or e.as_of


def test_every_builtin_row_names_a_public_dated_source():
    table = PriceTable.load()
    for name, source, as_of in _sources(table, table.entries):
        text = " ".join(source.split())
        assert "design notes" not in text, name
        assert "OpenAI pricing page" in text and ("openai.com" in text), name
        assert re.search(r"\d{4}-\d{2}-\d{2}", text) and as_of in text, name  # says which copy, and when


def test_example_pricing_file_cites_the_providers_own_pages():
    path = REPO / "configs" / "pricing.example.yaml"
    table = PriceTable.load(path)
    own = {"claude": "platform.claude.com", "gemini": "ai.google.dev"}
    for name in (n for n in table.entries if n.startswith(tuple(own))):
        source = " ".join(table.entries[name].source.split())
        assert own[name.split("-")[0]] in source and re.search(r"\d{4}-\d{2}-\d{2}", source), name
