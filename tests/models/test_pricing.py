import pytest

from harness.config import ModelConfig
from harness.models.pricing import PriceTable, cost_usd, fine_tuned_base
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


def test_dated_snapshot_priced_as_its_family(table):
    assert table.lookup("gpt-4o-mini-2024-07-18").input == 0.15


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
