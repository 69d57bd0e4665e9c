import pytest

from harness.config import ModelConfig
from harness.models.model_ids import fine_tuned_base
from harness.models.pricing import PriceTable, cost_usd
from harness.records import Usage


@pytest.fixture(scope="module")
def table():
    return PriceTable.load()


def test_gpt4o_mini_cost_to_the_cent(table):
    price = table.lookup("gpt-4o-mini")
    # 1M prompt tokens (200k cached) + 1M completion tokens
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_tokens=200_000)
    cost = cost_usd(usage, price)
    # 800k fresh x $0.15 + 200k cached x $0.075 + 1M out x $0.60 = $0.12 + $0.015 + $0.60
    assert cost == pytest.approx(0.735, abs=1e-12)


def test_small_request_cost(table):
    usage = Usage(prompt_tokens=370, completion_tokens=12)
    assert cost_usd(usage, table.lookup("gpt-4o")) == pytest.approx((370 * 2.50 + 12 * 10.00) / 1e6)


def test_listed_snapshot_is_priced_as_the_row_that_lists_it(table):
    p = table.lookup("gpt-4o-mini-2024-07-18")
    assert (p.input, p.row, p.basis) == (0.15, "gpt-4o-mini", "table")
    assert "snapshot gpt-4o-mini-2024-07-18" in p.source


def test_snapshot_with_its_own_price_is_never_priced_as_the_undated_row(table):
    old = table.lookup("gpt-4o-2024-05-13")
    assert (old.input, old.output, old.row) == (5.00, 15.00, "gpt-4o-2024-05-13")
    assert table.lookup("gpt-4o-2024-08-06").input == table.lookup("gpt-4o").input == 2.50


def test_unlisted_snapshot_is_unpriced_with_what_to_do(table):
    for model_id in ("gpt-4o-2099-01-01", "ft:gpt-4o-mini-2099-01-01:acme::x"):
        assert not table.lookup(model_id).known, model_id
    assert table.unlisted_snapshot("gpt-4o-2099-01-01") == "gpt-4o"
    assert table.unlisted_snapshot("gpt-4o-2024-08-06") is None  # listed
    assert table.unlisted_snapshot("mystery-2024-01-01") is None  # no family row: an ordinary unknown model
    reason = table.unpriced_reason("gpt-4o-2099-01-01")
    assert "dated snapshot" in reason and "not priced as 'gpt-4o'" in reason and "snapshots:" in reason
    assert table.unpriced_reason("mystery-model") == "no price for model 'mystery-model'"


def test_a_pricing_file_can_list_a_snapshot(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("models:\n  gpt-4o:\n    input: 2.5\n    output: 10\n    snapshots: [gpt-4o-2099-01-01]\n"
                 "    as_of: '2026-12-01'\n    source: invoice\n")
    t = PriceTable.load(f)
    assert t.lookup("gpt-4o-2099-01-01").input == 2.5
    assert not t.lookup("gpt-4o-2024-08-06").known  # the file's gpt-4o row replaces the built-in one and its list


def test_run_refuses_an_unlisted_snapshot_before_the_first_call(tmp_path, evalset_dir, capsys):
    from harness.cli import main
    from tests.conftest import make_config, right_answer
    from tests.fakes.openai_server import FakeOpenAIServer

    with FakeOpenAIServer(right_answer, models=["gpt-4o-2099-01-01"]) as srv:
        cfg = make_config(tmp_path, evalset_dir, srv.base_url)
        cfg.write_text(cfg.read_text().replace("model: gpt-4o-mini", "model: gpt-4o-2099-01-01"))
        code = main(["run", str(cfg), "--no-progress", "--out", str(tmp_path / "run")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and srv.requests == []
        assert err.count("\n") == 0 and err.startswith("error: models.small: 'gpt-4o-2099-01-01' is a dated snapshot")
        assert "pricing file" in err and "`price:` (or `price_as:`)" in err
        cfg.write_text(cfg.read_text().replace("structured_output:", "price_as: gpt-4o\n    structured_output:"))
        assert main(["run", str(cfg), "--no-progress", "--out", str(tmp_path / "run2")]) == 0


def test_fine_tuned_id_priced_from_base_fine_tuned_prices(table):
    model_id = "ft:gpt-4o-mini-2024-07-18:acme::abc123"
    assert fine_tuned_base(model_id) == "gpt-4o-mini-2024-07-18"
    p = table.lookup(model_id)
    assert (p.input, p.cached_input, p.output, p.training) == (0.30, 0.15, 1.20, 3.00)
    assert p.basis == "fine-tuned table"
    cost = cost_usd(Usage(prompt_tokens=1000, completion_tokens=100), p)
    assert round(cost * 1000, 2) == round((1000 * 0.30 + 100 * 1.20) / 1e6 * 1000, 2) == 0.42


def test_unknown_model_flagged_never_zero(table):
    p = table.lookup("mystery-model")
    assert not p.known
    assert cost_usd(Usage(prompt_tokens=10, completion_tokens=1), p) is None
    assert not table.lookup("ft:mystery:org::x").known


def test_local_model_is_self_hosted_zero_with_reason(table):
    p = table.for_model(ModelConfig(provider="local"), "gemma-3-270m")
    assert p.known and p.basis == "self-hosted" and p.input == 0 and "price_per_hour" in p.source


def test_config_override_wins(table):
    m = ModelConfig(provider="openai", model="gpt-4o-mini", price={"input": 1.0, "output": 2.0})
    p = table.for_model(m, "gpt-4o-mini")
    assert p.basis == "config" and p.input == 1.0 and p.cached_input == 1.0


def test_user_price_file_merges(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("models:\n  my-model: {input: 1.5, output: 3, as_of: '2026-11-01', source: invoice}\n")
    t = PriceTable.load(f)
    assert t.lookup("my-model").input == 1.5
    assert t.lookup("gpt-4o").input == 2.50


# -- the dated table, batch, price_as, stale prices, `harness prices` --------------------------------

CURRENT_OPENAI_CHAT = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini",
                       "gpt-5-nano", "gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "o1", "o3", "o3-mini", "o4-mini"]
# the fine-tunable models and the base snapshot a fine-tuned id names (ft:<snapshot>:<org>::<id>)
FINE_TUNABLE = {"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4.1": "gpt-4.1-2025-04-14",
                "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
                "o4-mini": "o4-mini-2025-04-16"}


def test_builtin_table_covers_current_openai_chat_models_with_date_and_source(table):
    import re

    for name in CURRENT_OPENAI_CHAT:
        e = table.entries[name]
        assert e.cached_input is not None and e.cached_input < e.input, name
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", e.as_of or ""), name
        assert e.source and len(e.source) > 20, name
    for name, snapshot in FINE_TUNABLE.items():
        ft = table.entries[name].fine_tuned
        assert ft is not None and (ft.training is not None or ft.training_per_hour is not None), name
        assert table.lookup(f"ft:{snapshot}:acme::x").basis == "fine-tuned table"
    o4 = table.lookup("ft:o4-mini-2025-04-16:acme::x")
    assert (o4.input, o4.output, o4.training, o4.training_per_hour) == (4.00, 16.00, None, 100.00)


def test_batch_is_half_unless_listed(tmp_path):
    from harness.models.pricing import table_rows

    rows = {r["model"]: r for r in table_rows(PriceTable.load())}
    assert (rows["gpt-4.1"]["batch_input"], rows["gpt-4.1"]["batch_output"]) == (1.00, 4.00)
    f = tmp_path / "p.yaml"
    f.write_text("models:\n  odd: {input: 1, output: 2, batch: {input: 0.7, output: 1.4}, as_of: '2026-11-01', "
                 "source: invoice}\n")
    rows = {r["model"]: r for r in table_rows(PriceTable.load(f))}
    assert (rows["odd"]["batch_input"], rows["odd"]["batch_output"]) == (0.7, 1.4)
    assert rows["gpt-4o"]["batch_input"] == 1.25


def test_price_as_prices_a_deployment_or_alias_as_another_row(table):
    m = ModelConfig(provider="openai-compatible", base_url="http://x/v1", model="team-alias", price_as="gpt-4.1")
    p = table.for_model(m, "team-alias")
    assert (p.input, p.row, p.basis) == (2.00, "gpt-4.1", "table")
    missing = ModelConfig(provider="openai-compatible", base_url="http://x/v1", model="a", price_as="nope")
    assert not table.for_model(missing, "a").known


def test_stale_price_warning_names_the_date(tmp_path, table):
    import datetime as dt

    from harness.models.pricing import stale_warning

    f = tmp_path / "dated.yaml"
    f.write_text("models:\n"
                 "  day-row: {input: 1, output: 2, as_of: '2026-03-21', source: s}\n"
                 "  month-row: {input: 1, output: 2, as_of: '2026-06', source: s,\n"
                 "    fine_tuned: {input: 2, output: 4, as_of: '2025-06-05', source: t}}\n")
    dated = PriceTable.load(f)
    day = dated.lookup("day-row")
    assert stale_warning(day, dt.date(2026, 9, 1)) is None
    warning = stale_warning(day, dt.date(2026, 11, 24))
    assert "day-row" in warning and "2026-03-21" in warning and "248 days" in warning
    # a month-only date counts from the month's first day
    month = dated.lookup("month-row")
    assert stale_warning(month, dt.date(2026, 11, 28)) is None
    assert "2026-06" in stale_warning(month, dt.date(2026, 11, 29))
    # fine-tuned prices carry their own date
    assert "month-row fine-tuned dates from 2025-06-05" in stale_warning(dated.lookup("ft:month-row:a::b"),
                                                                          dt.date(2026, 11, 24))
    # prices set in the config are the user's own: no warning
    cfg_price = table.for_model(ModelConfig(provider="openai", model="o3", price={"input": 1, "output": 2}), "o3")
    assert stale_warning(cfg_price, dt.date(2030, 1, 1)) is None


def test_run_and_validate_warn_when_a_price_is_old(tmp_path, evalset_dir, fake_server, capsys):
    import json

    from harness.cli import main
    from tests.conftest import make_config

    prices = tmp_path / "old-prices.yaml"
    prices.write_text("models:\n  gpt-4o-mini: {input: 0.15, output: 0.60, as_of: '2020-01-15', source: old}\n")
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, pricing=str(prices))
    assert main(["validate", str(cfg)]) == 0
    assert "the price of gpt-4o-mini dates from 2020-01-15" in capsys.readouterr().out
    assert main(["run", str(cfg), "--no-progress", "--out", str(tmp_path / "run")]) == 0
    assert "warning: the price of gpt-4o-mini dates from 2020-01-15" in capsys.readouterr().err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert any("2020-01-15" in w for w in manifest["price_warnings"])
    assert manifest["variants"]["baseline"]["price"]["as_of"] == "2020-01-15"


def test_harness_prices_lists_the_table(capsys):
    import json

    from harness.cli import main
    from tests.conftest import REPO

    assert main(["prices", "--today", "2027-03-01"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    for col in ("model", "input", "cached", "output", "batch", "fine-tuned", "training", "date", "source"):
        assert col in header
    lines = {ln.split()[0]: ln for ln in out.splitlines()[1:] if ln.strip()}
    for name in CURRENT_OPENAI_CHAT:
        assert name in lines, name
    assert "2026-07-24 !" in lines["o3"] and "LiteLLM" in lines["o3"]  # 220 days before --today
    assert "100/hour" in lines["o4-mini"] and "25/1M" in lines["gpt-4.1"]
    assert main(["prices", "--json", "--pricing", str(REPO / "configs" / "pricing.example.yaml")]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["claude-haiku-4-5"]["input"] == 1.00 and rows["gpt-5"]["output"] == 10.00
