"""Safety: a config's names cannot place files outside their folder, and credentials given in a model's URL or
extra_body are used for the calls but never stored (config.json, manifest, records, error messages, cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.config import REDACTED, load_config
from harness.errors import ConfigError
from harness.redact import redact_body, redact_url, restore_secrets, secret_key, snapshot
from tests.conftest import make_config, right_answer
from tests.fakes.openai_server import FakeOpenAIServer, Reply

PASSWORD, QUERY_KEY, BODY_KEY, NESTED_TOKEN = "pw-Secret-0001", "qk-Secret-0002", "eb-Secret-0003", "nt-Secret-0004"
SECRETS = (PASSWORD, QUERY_KEY, BODY_KEY, NESTED_TOKEN)


# -- names ----------------------------------------------------------------------------------------------------

def _edit(cfg: Path, **changes) -> None:
    data = yaml.safe_load(cfg.read_text())
    data.update(changes)
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("bad", ["../../escaped", "a/b", "a\\b", ".hidden", "..", "with space", "x" * 101])
def test_unsafe_run_name_is_refused_naming_the_field(tmp_path, evalset_dir, bad):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1")
    _edit(cfg, name=bad)
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    msg = str(exc.value)
    assert msg.startswith(f"{cfg}:1: name: {bad!r} is not a safe name") and "letters, digits" in msg


def test_unsafe_variant_name_is_refused_naming_the_item(tmp_path, evalset_dir):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                      variants=[{"name": "ok-v1.2_x", "kind": "baseline", "model": "small"},
                                {"name": "../up", "kind": "baseline", "model": "small"}])
    with pytest.raises(ConfigError, match=r"variants\[1\]\.name: '\.\./up' is not a safe name"):
        load_config(cfg)


def test_escaping_name_writes_nothing_outside_the_results_folder(tmp_path, evalset_dir, fake_server, capsys):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    cfg = make_config(work, evalset_dir, fake_server.base_url)
    _edit(cfg, name="../../escaped")
    code = main(["run", str(cfg), "--results-dir", str(work / "results"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "name: '../../escaped' is not a safe name" in err
    assert not list(tmp_path.rglob("escaped*")) and fake_server.requests == []


# -- what counts as a credential --------------------------------------------------------------------------------

def test_secret_looking_keys_and_urls():
    for name in ("api_key", "apiKey", "x-api-key", "access_token", "client_secret", "password", "Authorization",
                 "auth", "token"):
        assert secret_key(name), name
    for name in ("max_tokens", "top_k", "prompt_cache_key", "temperature", "keywords", "metadata"):
        assert not secret_key(name), name
    assert redact_url("https://u:p@h.example/v1?api-version=2024-10-21&key=k1&token=t") == \
        "https://REDACTED@h.example/v1?api-version=2024-10-21&key=REDACTED&token=REDACTED"
    plain = "http://127.0.0.1:8000/v1/"
    assert redact_url(plain) is plain  # the very string: cache keys of URLs without credentials do not change
    assert redact_body({"api_key": "s", "top_k": 3, "meta": {"auth_token": "t", "tags": ["a"]}}) == \
        {"api_key": REDACTED, "top_k": 3, "meta": {"auth_token": REDACTED, "tags": ["a"]}}


def _secret_config(tmp_path: Path, evalset_dir: Path, base_url: str, password: str = PASSWORD,
                   query_key: str = QUERY_KEY, body_key: str = BODY_KEY, nested: str = NESTED_TOKEN, **extra) -> Path:
    url = base_url.replace("http://", f"http://alice:{password}@") + f"?api-key={query_key}"
    cfg = make_config(tmp_path, evalset_dir, url, **extra)
    data = yaml.safe_load(cfg.read_text())
    data["models"]["small"]["extra_body"] = {"api_key": body_key, "metadata": {"auth_token": nested}, "top_k": 3}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return cfg


def _files_holding_a_secret(*roots: Path) -> list[str]:
    hits = []
    for root in roots:
        for f in [root] if root.is_file() else root.rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                hits += [f"{f}: {s}" for s in SECRETS if s.encode() in data]
    return hits


def test_credentials_are_sent_but_never_stored(tmp_path, evalset_dir, isolated_cache):
    with FakeOpenAIServer(right_answer, models=["gpt-4o-mini"]) as srv:
        cfg = _secret_config(tmp_path, evalset_dir, srv.base_url)
        assert main(["run", str(cfg), "--no-progress", "--out", str(tmp_path / "run")]) == 0
        # the real values were used for the calls
        assert all(r["api_key"] == BODY_KEY and r["metadata"] == {"auth_token": NESTED_TOKEN} for r in srv.requests)
        assert all(QUERY_KEY in p for p in srv.paths_seen) and len(srv.requests) == 4
        # ...and are nowhere in the run folder or the response cache
        assert _files_holding_a_secret(tmp_path / "run", isolated_cache) == []
        saved = json.loads((tmp_path / "run" / "config.json").read_text())["models"]["small"]
        assert saved["base_url"].startswith("http://REDACTED@127.0.0.1:") and saved["base_url"].endswith(
            "/v1?api-key=REDACTED")
        assert saved["extra_body"] == {"api_key": REDACTED, "metadata": {"auth_token": REDACTED}, "top_k": 3}
        # rotated credentials: the same requests, so the cache answers them all
        (tmp_path / "r").mkdir()
        rotated = _secret_config(tmp_path / "r", evalset_dir, srv.base_url, password="pw-Rotated-1",
                                 query_key="qk-Rotated-2", body_key="eb-Rotated-3", nested="nt-Rotated-4")
        assert main(["run", str(rotated), "--no-progress", "--out", str(tmp_path / "run2")]) == 0
        assert len(srv.requests) == 4
        assert all(r["cache_hit"] for r in map(json.loads, (tmp_path / "run2" / "records.jsonl").open()))


def test_error_messages_and_skip_reasons_hold_no_credential(tmp_path, evalset_dir, isolated_cache, capsys):
    echo = json.dumps({"error": {"message": f"bad key {BODY_KEY} for alice:{PASSWORD} at {QUERY_KEY}",
                                 "type": "invalid_request_error"}}).encode()
    with FakeOpenAIServer(lambda body: Reply(status=422, raw_body=echo), models=["gpt-4o-mini"]) as srv:
        cfg = _secret_config(tmp_path, evalset_dir, srv.base_url)
        main(["run", str(cfg), "--no-progress", "--no-cache", "--out", str(tmp_path / "run")])
        records = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").open()]
        assert records and all("bad key ***" in r["error"] for r in records)
    # an unreachable endpoint: the variant is skipped with the URL in the reason, credentials replaced
    (tmp_path / "gone").mkdir()
    cfg = _secret_config(tmp_path / "gone", evalset_dir, "http://127.0.0.1:9/v1")
    main(["run", str(cfg), "--no-progress", "--no-cache", "--out", str(tmp_path / "run2")])
    reason = json.loads((tmp_path / "run2" / "manifest.json").read_text())["variants"]["baseline"]["skipped"]
    assert "unreachable at http://REDACTED@127.0.0.1:9" in reason
    out = capsys.readouterr()
    assert _files_holding_a_secret(tmp_path / "run", tmp_path / "run2") == []
    assert not any(s in out.out + out.err for s in SECRETS)


def test_resume_takes_the_credentials_back_from_the_config_file(tmp_path, evalset_dir, isolated_cache):
    from harness.rundir.folder import load_run_config

    calls = {"n": 0}

    def first_fails(body):
        calls["n"] += 1
        return Reply(status=422) if calls["n"] == 1 else right_answer(body)

    with FakeOpenAIServer(first_fails, models=["gpt-4o-mini"]) as srv:
        cfg = _secret_config(tmp_path, evalset_dir, srv.base_url, run={"concurrency": 1, "max_tokens": 64})
        main(["run", str(cfg), "--no-progress", "--out", str(tmp_path / "run")])
        assert main(["run", "--resume", str(tmp_path / "run"), "--retry-errors", "--no-progress"]) == 0
        assert len(srv.requests) == 5 and srv.requests[-1]["api_key"] == BODY_KEY and QUERY_KEY in srv.paths_seen[-1]
    assert _files_holding_a_secret(tmp_path / "run", isolated_cache) == []
    # a config file whose credentials changed since is not taken for the run's own
    stored, original = load_run_config(tmp_path / "run"), load_config(cfg)
    original.models["small"].extra_body["top_k"] = 4
    with pytest.raises(ConfigError, match=r"models\.small\.extra_body: its value is not stored"):
        restore_secrets(stored, original)
    restore_secrets(stored, load_config(cfg))
    assert snapshot(stored) == snapshot(load_config(cfg)) and stored.models["small"].extra_body["api_key"] == BODY_KEY


def test_batch_mode_refuses_a_credential_in_extra_body(tmp_path, evalset_dir, capsys):
    cfg = _secret_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", run={"mode": "batch"})
    code = main(["run", str(cfg), "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: models.small.extra_body: run.mode batch writes every request body")
    assert not any(s in err for s in SECRETS)
