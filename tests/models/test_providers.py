"""Azure OpenAI, gateway headers and reasoning models, each against the loopback OpenAI-compatible server."""

import json

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from harness.api import run
from harness.config import REDACTED, ModelConfig, load_config
from harness.errors import ConfigError
from harness.models.client import ModelClient
from harness.models.model_ids import is_reasoning_model
from harness.models.pricing import PriceTable, cost_usd
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.conftest import make_config, right_answer
from tests.fakes.openai_server import FakeOpenAIServer, Reply

AZURE_KEY = "azure-key-0123456789abcdef"


def do_run(cfg, tmp_path, **kw):
    kw.setdefault("results_dir", tmp_path / "results")
    return run(cfg, RunOptions(progress=False, **kw))


@pytest.fixture
def server():
    srv = FakeOpenAIServer(right_answer, models=["gpt-4o-mini", "o4-mini", "fake-model"]).start()
    yield srv
    srv.stop()


# -- Azure OpenAI ------------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint_key", ["base_url", "azure_endpoint"])
def test_azure_calls_the_deployment_with_api_version_and_api_key(tmp_path, evalset_dir, server, monkeypatch,
                                                                  endpoint_key):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    cfg = make_config(tmp_path, evalset_dir, server.base_url, models={"az": {
        "provider": "azure", endpoint_key: server.root_url, "deployment": "gpt-4o-mini-prod",
        "api_version": "2024-10-21", "price_as": "gpt-4o-mini"}},
        variants=[{"name": "baseline", "kind": "baseline", "model": "az"}])
    res = do_run(cfg, tmp_path)
    assert res.status == "completed", res.message
    assert len(server.requests) == 4
    # The deployment path, the api-version query and the api-key header, on every call.
    assert set(server.paths_seen) == {"/openai/deployments/gpt-4o-mini-prod/chat/completions?api-version=2024-10-21"}
    assert all(h.get("api-key") == AZURE_KEY for h in server.headers_seen)
    assert all(AZURE_KEY not in h.get("authorization", "") for h in server.headers_seen)
    assert {b["model"] for b in server.requests} == {"gpt-4o-mini-prod"}  # the model field is the deployment
    recs = read_records(res.run_dir / "records.jsonl")
    assert all(r.correct for r in recs)
    # Priced as the row price_as names: 100 prompt x $0.15 + 10 completion x $0.60 per 1M tokens.
    assert all(r.cost_usd == pytest.approx((100 * 0.15 + 10 * 0.60) / 1e6) for r in recs)
    info = json.loads((res.run_dir / "manifest.json").read_text())["variants"]["baseline"]
    assert info["model_id"] == "gpt-4o-mini-prod" and info["price_as"] == "gpt-4o-mini"
    assert info["price"]["source"].startswith("gpt-4o-mini,")
    assert AZURE_KEY not in (res.run_dir / "config.json").read_text()


def test_azure_without_its_key_stops_before_calls(tmp_path, evalset_dir, server, monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    cfg = make_config(tmp_path, evalset_dir, server.base_url, models={"az": {
        "provider": "azure", "base_url": server.root_url, "deployment": "d", "api_version": "2024-10-21",
        "price_as": "gpt-4o-mini"}}, variants=[{"name": "b", "kind": "baseline", "model": "az"}])
    with pytest.raises(ConfigError, match="AZURE_OPENAI_API_KEY is not set"):
        do_run(cfg, tmp_path)
    assert server.requests == []


def test_azure_unknown_deployment_price_points_at_price_as(tmp_path, evalset_dir, server, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    cfg = make_config(tmp_path, evalset_dir, server.base_url, models={"az": {
        "provider": "azure", "base_url": server.root_url, "deployment": "my-prod-deployment",
        "api_version": "2024-10-21"}}, variants=[{"name": "b", "kind": "baseline", "model": "az"}])
    with pytest.raises(ConfigError, match="set price_as"):
        do_run(cfg, tmp_path)


@pytest.mark.parametrize(("fields", "message"), [
    ({"deployment": "d", "api_version": "v"}, "needs base_url"),
    ({"base_url": "https://x", "api_version": "v"}, "needs deployment"),
    ({"base_url": "https://x", "deployment": "d"}, "needs api_version"),
    ({"base_url": "https://x", "azure_endpoint": "https://x", "deployment": "d", "api_version": "v"}, "once"),
    ({"base_url": "https://x", "deployment": "d", "api_version": "v", "model": "gpt-4o"}, "not model"),
])
def test_azure_config_is_checked(fields, message):
    with pytest.raises(ValidationError, match=message):
        ModelConfig(provider="azure", **fields)


def test_azure_keys_rejected_on_other_providers():
    with pytest.raises(ValidationError, match="only to provider: azure"):
        ModelConfig(provider="openai", model="gpt-4o", deployment="d")


# -- gateway headers ---------------------------------------------------------------------------------

def gateway_config(tmp_path, evalset_dir, url, headers):
    return make_config(tmp_path, evalset_dir, url, models={"gw": {
        "provider": "openai-compatible", "base_url": url, "model": "gpt-4o-mini", "headers": headers}},
        variants=[{"name": "baseline", "kind": "baseline", "model": "gw"}])


def test_headers_sent_on_every_call_and_kept_out_of_the_run_folder(tmp_path, evalset_dir, server, monkeypatch):
    monkeypatch.setenv("GATEWAY_KEY", "gw-key-first-1234567890")
    cfg = gateway_config(tmp_path, evalset_dir, server.base_url,
                         {"X-Gateway-Key": {"env": "GATEWAY_KEY"}, "X-Team": "evals", "X-Route": "route-secret-xyz"})
    res = do_run(cfg, tmp_path)
    assert res.status == "completed"
    assert len(server.headers_seen) == 4
    for h in server.headers_seen:
        assert (h["x-gateway-key"], h["x-team"], h["x-route"]) == ("gw-key-first-1234567890", "evals",
                                                                   "route-secret-xyz")
    saved = json.loads((res.run_dir / "config.json").read_text())["models"]["gw"]["headers"]
    assert saved == {"X-Gateway-Key": {"env": "GATEWAY_KEY"}, "X-Team": REDACTED, "X-Route": REDACTED}
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    assert manifest["variants"]["baseline"]["headers"] == ["X-Gateway-Key", "X-Route", "X-Team"]
    for p in res.run_dir.rglob("*"):
        if p.is_file():
            text = p.read_bytes()
            assert b"gw-key-first" not in text and b"route-secret-xyz" not in text, p


def test_rotated_header_value_still_hits_the_cache_but_other_names_do_not(tmp_path, evalset_dir, server,
                                                                          monkeypatch):
    monkeypatch.setenv("GATEWAY_KEY", "first-key-aaaaaaaaaaaa")
    cfg = gateway_config(tmp_path, evalset_dir, server.base_url, {"X-Gateway-Key": {"env": "GATEWAY_KEY"}})
    do_run(cfg, tmp_path)
    assert len(server.requests) == 4
    monkeypatch.setenv("GATEWAY_KEY", "rotated-key-bbbbbbbbbbbb")
    again = do_run(cfg, tmp_path)
    assert len(server.requests) == 4  # nothing asked again: the header's value is not part of the key
    assert all(r.cache_hit for r in read_records(again.run_dir / "records.jsonl"))
    other = gateway_config(tmp_path, evalset_dir, server.base_url, {"X-Other-Key": {"env": "GATEWAY_KEY"}})
    do_run(other, tmp_path)
    assert len(server.requests) == 8  # another header name may route elsewhere: asked again
    assert server.headers_seen[-1]["x-other-key"] == "rotated-key-bbbbbbbbbbbb"


def test_header_from_an_unset_variable_stops_before_calls(tmp_path, evalset_dir, server, monkeypatch):
    monkeypatch.delenv("GATEWAY_KEY", raising=False)
    cfg = gateway_config(tmp_path, evalset_dir, server.base_url, {"X-Gateway-Key": {"env": "GATEWAY_KEY"}})
    with pytest.raises(ConfigError, match=r"models\.gw\.headers\.X-Gateway-Key: environment variable GATEWAY_KEY"):
        do_run(cfg, tmp_path)
    assert server.requests == []


def test_resume_takes_literal_header_values_from_the_config_file(tmp_path, evalset_dir, server):
    cfg = gateway_config(tmp_path, evalset_dir, server.base_url, {"X-Team": "team-literal-value"})
    res = do_run(cfg, tmp_path, use_cache=False)
    lines = (res.run_dir / "records.jsonl").read_text().splitlines(keepends=True)
    (res.run_dir / "records.jsonl").write_text("".join(lines[:2]))
    again = run(None, RunOptions(resume=res.run_dir, progress=False, use_cache=False))
    assert again.status == "completed"
    assert len(server.headers_seen) == 6
    assert all(h["x-team"] == "team-literal-value" for h in server.headers_seen)
    cfg.unlink()  # without the original file the value is gone: resuming says so instead of sending a placeholder
    (res.run_dir / "records.jsonl").write_text("".join(lines[:2]))
    with pytest.raises(ConfigError, match="X-Team: its value is not stored"):
        run(None, RunOptions(resume=res.run_dir, progress=False, use_cache=False))


@pytest.mark.parametrize("name", ["Bad Header", "X:Y", ""])
def test_invalid_header_names_rejected(name):
    with pytest.raises(ValidationError, match="not a valid HTTP header name"):
        ModelConfig(provider="openai", model="gpt-4o", headers={name: "v"})


# -- reasoning models --------------------------------------------------------------------------------

@pytest.mark.parametrize(("model_id", "expected"), [
    ("o1", True), ("o3-mini", True), ("o4-mini-2025-04-16", True), ("gpt-5", True), ("gpt-5-nano", True),
    ("gpt-5.4-mini", True), ("ft:o4-mini-2025-04-16:acme::abc", True), ("openai/o3", True),
    ("gpt-4o", False), ("gpt-4.1-mini", False), ("gpt-5-chat-latest", False), ("omni-moderation-latest", False),
    ("meta-llama/Llama-3.1-8B-Instruct", False),
])
def test_known_reasoning_model_names(model_id, expected):
    assert is_reasoning_model(model_id) is expected


def client_for(**cfg) -> ModelClient:
    m = ModelConfig(provider="openai", **cfg)
    return ModelClient("m", m, m.model, None, None, {"type": "object"})


def test_reasoning_request_uses_max_completion_tokens_and_drops_temperature_and_seed():
    msgs = [{"role": "user", "content": "hi"}]
    req = client_for(model="o4-mini", reasoning_effort="low").build_request(
        msgs, temperature=0, max_tokens=256, seed=7, stop=[])
    assert req["max_completion_tokens"] == 256 and req["reasoning_effort"] == "low"
    assert not {"max_tokens", "temperature", "seed"} & set(req)
    classic = client_for(model="gpt-4o-mini").build_request(msgs, temperature=0, max_tokens=256, seed=7, stop=[])
    assert (classic["max_tokens"], classic["temperature"], classic["seed"]) == (256, 0, 7)
    assert "max_completion_tokens" not in classic and "reasoning_effort" not in classic
    # the per-model switch wins over the built-in list, both ways
    forced = client_for(model="my-thinker", reasoning=True).build_request(msgs, temperature=0, max_tokens=9,
                                                                          seed=None, stop=[])
    assert forced["max_completion_tokens"] == 9 and "temperature" not in forced
    off = client_for(model="o4-mini", reasoning=False).build_request(msgs, temperature=0, max_tokens=9, seed=1,
                                                                     stop=[])
    assert off["max_tokens"] == 9 and off["temperature"] == 0
    # a gateway alias is judged by the price row it is priced as
    assert client_for(model="team-alias", price_as="o3").reasoning


def test_reasoning_run_records_reasoning_tokens_priced_as_output(tmp_path, evalset_dir, monkeypatch):
    def handler(body):
        reply = right_answer(body)
        reply.prompt_tokens, reply.completion_tokens, reply.reasoning_tokens = 100, 250, 240
        return reply

    with FakeOpenAIServer(handler, models=["o4-mini"]) as srv:
        cfg = make_config(tmp_path, evalset_dir, srv.base_url, models={"r": {
            "provider": "openai-compatible", "base_url": srv.base_url, "model": "o4-mini",
            "reasoning_effort": "low"}}, variants=[{"name": "baseline", "kind": "baseline", "model": "r"}])
        res = do_run(cfg, tmp_path)
    assert res.status == "completed"
    for body in srv.requests:
        assert body["max_completion_tokens"] == 64 and body["reasoning_effort"] == "low"
        assert not {"max_tokens", "temperature", "seed"} & set(body)
    recs = read_records(res.run_dir / "records.jsonl")
    assert all(r.usage.reasoning_tokens == 240 and r.usage.completion_tokens == 250 for r in recs)
    # completion_tokens already holds the reasoning tokens: 100 x $1.10 + 250 x $4.40 per 1M (o4-mini)
    assert all(r.cost_usd == pytest.approx((100 * 1.10 + 250 * 4.40) / 1e6) for r in recs)
    row = pd.read_csv(res.run_dir / "summary.csv").iloc[0]
    assert row["reasoning_tokens_mean"] == 240 and row["completion_tokens_mean"] == 250
    assert "reasoning tok" in (res.run_dir / "summary.md").read_text()
    assert json.loads((res.run_dir / "manifest.json").read_text())["variants"]["baseline"]["reasoning"] is True


def test_runs_without_reasoning_tokens_keep_their_table(tmp_path, evalset_dir, server):
    res = do_run(make_config(tmp_path, evalset_dir, server.base_url), tmp_path)
    row = pd.read_csv(res.run_dir / "summary.csv").iloc[0]
    assert row["reasoning_tokens_mean"] == 0
    assert "reasoning tok" not in (res.run_dir / "summary.md").read_text()


def test_reasoning_cut_off_says_reasoning_shares_the_budget(tmp_path, evalset_dir):
    with FakeOpenAIServer(lambda b: Reply(text="", finish_reason="length", reasoning_tokens=64),
                          models=["o3"]) as srv:
        cfg = make_config(tmp_path, evalset_dir, srv.base_url, models={"r": {
            "provider": "openai-compatible", "base_url": srv.base_url, "model": "o3"}},
            variants=[{"name": "b", "kind": "baseline", "model": "r"}])
        res = do_run(cfg, tmp_path)
    recs = read_records(res.run_dir / "records.jsonl")
    # a truncated answer is scored (format-invalid, wrong), and says that reasoning shares the budget
    assert all(r.error is None and not r.correct for r in recs)
    assert all("max_tokens=64" in r.answer_issue and "hidden reasoning tokens" in r.answer_issue for r in recs)


def test_reasoning_tokens_cost_at_output_rate():
    price = PriceTable.load().lookup("o3")
    from harness.records import Usage

    usage = Usage(prompt_tokens=1000, completion_tokens=3000, reasoning_tokens=2500)
    assert cost_usd(usage, price) == pytest.approx((1000 * 2.00 + 3000 * 8.00) / 1e6)


# -- the README's provider section -------------------------------------------------------------------

def test_readme_provider_configs_validate():
    """Every YAML block of README's "Pointing a config at your model" parses and validates."""
    from harness.config import RunConfig
    from tests.conftest import REPO

    text = (REPO / "README.md").read_text()
    section = text.split("## Pointing a config at your model", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:]]
    assert blocks
    providers = set()
    for block in blocks:
        data = yaml.safe_load(block)
        if "variants" not in data:  # a models-only snippet
            data = {"name": "x", "evalset": ".", "variants": [
                {"name": "v", "kind": "baseline", "model": next(iter(data["models"]))}], **data}
        cfg = RunConfig.model_validate(data)
        providers |= {m.provider for m in cfg.models.values()}
        heads = [m.headers for m in cfg.models.values() if m.headers]
        assert all(isinstance(h, dict) for h in heads)
    assert {"openai", "openai-compatible", "azure"} <= providers
    assert "api.anthropic.com" in section and "generativelanguage.googleapis.com" in section


def test_pricing_example_covers_anthropic_and_google(tmp_path):
    from tests.conftest import REPO

    table = PriceTable.load(REPO / "configs" / "pricing.example.yaml")
    claude = [n for n in table.entries if n.startswith("claude-")]
    gemini = [n for n in table.entries if n.startswith("gemini-")]
    assert claude and gemini
    for name in claude + gemini:
        e = table.entries[name]
        assert e.as_of and e.source, name
    assert table.lookup("gpt-4o").input == 2.50  # merged over the built-in table


def test_example_configs_for_anthropic_and_google_validate(tmp_path, evalset_dir):
    from tests.conftest import REPO

    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "name": "x", "evalset": str(evalset_dir), "pricing": str(REPO / "configs" / "pricing.example.yaml"),
        "models": {
            "claude": {"provider": "openai-compatible", "base_url": "https://api.anthropic.com/v1/",
                       "model": "claude-haiku-4-5", "api_key_env": "ANTHROPIC_API_KEY", "structured_output": "none"},
            "gemini": {"provider": "openai-compatible",
                       "base_url": "https://generativelanguage.googleapis.com/v1beta/openai/",
                       "model": "gemini-2.5-flash", "api_key_env": "GEMINI_API_KEY",
                       "headers": {"X-Team": "evals"}}},
        "variants": [{"name": "a", "kind": "baseline", "model": "claude"},
                     {"name": "b", "kind": "baseline", "model": "gemini"}]}))
    cfg = load_config(cfg_path)
    table = PriceTable.load(cfg.pricing)
    for name, m in cfg.models.items():
        assert table.for_model(m, m.model).known, name


def test_readme_configs_of_the_new_sections_validate():
    """The README's configs for an application under test, an existing index and the sequential stop validate."""
    from harness.config import RunConfig
    from tests.conftest import REPO

    text = (REPO / "README.md").read_text()
    checked = 0
    for heading in ("## Your application as the system under test", "## Your own index",
                    "## How many items do I need?"):
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        for block in [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:]]:
            data = yaml.safe_load(block)
            data.setdefault("name", "x")
            data.setdefault("evalset", ".")
            data.setdefault("models", {"small": {"provider": "openai", "model": "gpt-4o-mini"}})
            data.setdefault("variants", [{"name": "baseline", "kind": "baseline", "model": "small"},
                                         {"name": "few-shot", "kind": "few_shot", "model": "small"}])
            RunConfig.model_validate(data)
            checked += 1
    assert checked == 3
