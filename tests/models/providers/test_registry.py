"""Providers are registered classes: the config asks them, the registry names the valid ones, and a provider
added in one module (here: in this test) runs a config end to end against the loopback server."""

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import harness
from harness.api import run
from harness.config import ModelConfig, load_config
from harness.errors import ConfigError
from harness.models.providers import Provider, provider_class, provider_names, register, registry
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.conftest import make_config, right_answer
from tests.fakes.openai_server import FakeOpenAIServer

BUILT_IN = ["azure", "http", "local", "openai", "openai-compatible", "python"]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test end with it."""
    monkeypatch.setattr(registry, "PROVIDERS", dict(registry.PROVIDERS))


class LoopbackGateway(Provider):
    """A tiny provider: an OpenAI-compatible gateway that routes on a header of its own, answers in JSON mode
    by default and is self-hosted (no per-token price)."""

    name = "loopback-gateway"
    default_structured_output = "json_object"
    self_hosted = True

    def check(self) -> None:
        if not self.cfg.base_url:
            raise ValueError("provider loopback-gateway needs base_url (the gateway's address)")
        self.require_model()

    def build_client(self, base_url: str | None, api_key: str | None, common: dict[str, Any]) -> Any:
        headers = {**(common.get("default_headers") or {}), "X-Gateway-Route": "evals"}
        return super().build_client(base_url, api_key, {**common, "default_headers": headers})

    def cache_scope(self) -> str:
        return "|route=evals"


def test_built_in_providers_are_registered():
    assert provider_names() == BUILT_IN
    assert {provider_class(name).name for name in BUILT_IN} == set(BUILT_IN)


def test_unknown_provider_names_the_valid_ones_with_the_yaml_line(tmp_path, evalset_dir):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                      models={"small": {"provider": "opnai", "model": "gpt-4o-mini"}})
    lines = cfg.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "opnai" in text)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert str(err.value) == (f"{cfg}:{line}: models.small.provider: unknown provider 'opnai' "
                              f"(valid: azure, http, local, openai, openai-compatible, python)")


def test_lookup_error_lists_what_is_registered(scratch_registry):
    register(LoopbackGateway)
    with pytest.raises(ValueError, match=r"unknown provider 'nope' \(valid: azure, http, local, loopback-gateway, "
                                         r"openai, openai-compatible, python\)"):
        provider_class("nope")


def test_a_name_is_registered_once(scratch_registry):
    class Other(Provider):
        name = "openai"

    with pytest.raises(ValueError, match="provider 'openai' is already registered"):
        register(Other)
    with pytest.raises(ValueError, match="has no provider name"):
        register(type("Nameless", (Provider,), {}))
    assert register(LoopbackGateway) is LoopbackGateway and register(LoopbackGateway) is LoopbackGateway


def test_defaults_come_from_the_provider():
    local = ModelConfig(provider="local")
    remote = ModelConfig(provider="openai", model="gpt-4o-mini")
    assert (local.effective_structured_output, local.effective_system_role, local.effective_api_key_env) == (
        "json_object", False, None)
    assert (remote.effective_structured_output, remote.effective_system_role, remote.effective_api_key_env) == (
        "json_schema", True, "OPENAI_API_KEY")
    assert ModelConfig(provider="local", system_role=True, structured_output="none").effective_system_role is True


def test_keys_of_another_provider_are_refused():
    with pytest.raises(ValidationError, match="gguf and lora apply only to provider: local"):
        ModelConfig(provider="openai-compatible", base_url="http://x/v1", model="m", lora="a.gguf")


def test_batch_mode_asks_whether_the_provider_serves_the_batch_api(tmp_path, evalset_dir):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", models={"loc": {"provider": "local"}},
                      variants=[{"name": "baseline", "kind": "baseline", "model": "loc"}],
                      run={"mode": "batch"})
    with pytest.raises(ConfigError, match=r"variants\[0\]\.model: run.mode batch .* which model 'loc' "
                                          r"\(provider: local\) does not serve; use mode: sync"):
        load_config(cfg)


def test_a_provider_added_in_one_module_runs_a_config_end_to_end(tmp_path, evalset_dir, scratch_registry):
    register(LoopbackGateway)
    with FakeOpenAIServer(right_answer, models=["team-model"]) as srv:
        cfg = make_config(tmp_path, evalset_dir, srv.base_url,
                          models={"gw": {"provider": "loopback-gateway", "base_url": srv.base_url,
                                         "model": "team-model"}},
                          variants=[{"name": "baseline", "kind": "baseline", "model": "gw"}])
        res = run(cfg, RunOptions(progress=False, results_dir=tmp_path / "results"))
        assert res.status == "completed", res.message
        assert len(srv.requests) == 4
        assert all(h.get("x-gateway-route") == "evals" for h in srv.headers_seen)  # its client, its header
        assert {b["response_format"]["type"] for b in srv.requests} == {"json_object"}  # its default mode
    recs = read_records(res.run_dir / "records.jsonl")
    assert all(r.correct for r in recs)
    assert all(r.cost_usd is None for r in recs)  # self-hosted: no per-token price (costed per hour, if at all)
    info = json.loads((res.run_dir / "manifest.json").read_text())["variants"]["baseline"]
    assert (info["provider"], info["structured_output"], info["price"]["basis"]) == (
        "loopback-gateway", "json_object", "self-hosted")


def test_the_config_asks_an_added_provider_what_it_needs(tmp_path, evalset_dir, scratch_registry):
    register(LoopbackGateway)
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                      models={"gw": {"provider": "loopback-gateway", "model": "gpt-4o-mini"}},
                      variants=[{"name": "baseline", "kind": "baseline", "model": "gw"}])
    with pytest.raises(ConfigError, match=r"models\.gw: provider loopback-gateway needs base_url"):
        load_config(cfg)


def _provider_branches(path: Path) -> list[str]:
    """`x.provider == "..."`, `provider in ("...", ...)`, `info.get("provider") != "..."` in one module."""
    def is_provider(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute | ast.Name):
            return getattr(node, "attr", getattr(node, "id", None)) == "provider"
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and any(isinstance(a, ast.Constant) and a.value == "provider" for a in node.args))

    def is_text(node: ast.AST) -> bool:
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(is_text(e) for e in node.elts)
        return isinstance(node, ast.Constant) and isinstance(node.value, str)

    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(is_provider(s) for s in sides) and any(is_text(s) for s in sides):
                found.append(f"{path}:{node.lineno}")
    return found


def test_no_provider_branch_outside_the_models_package():
    root = Path(harness.__file__).parent
    found = [hit for p in sorted(root.rglob("*.py")) if root / "models" not in p.parents
             for hit in _provider_branches(p)]
    assert found == []


def test_the_branch_finder_finds_a_branch(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('if m.provider == "local" or info.get("provider") in ("azure",):\n    pass\n')
    assert len(_provider_branches(sample)) == 2
