"""`harness finetune openai` against a fake of the files and fine-tuning endpoints on 127.0.0.1, through the
real `openai` SDK: upload, job creation, following with events, saving the model id, failures, Ctrl-C."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.config import load_config
from harness.runner.variant_plan import resolve_model_id
from tests.fakes.ft_server import FakeFineTuningServer
from tests.finetune.test_export import FT_TRAIN, ft_config, ft_evalset  # noqa: F401  (fixture)

SECRET = "sk-test-do-not-print-0123456789"


@pytest.fixture
def ft_server():
    with FakeFineTuningServer() as server:
        yield server


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("FT_TEST_KEY", SECRET)


def openai_cmd(cfg: Path, *extra: str) -> list[str]:
    return ["finetune", "openai", str(cfg), "--poll", "0", "--no-progress", *extra]


def all_text_under(path: Path) -> str:
    return "".join(p.read_text("utf-8", errors="replace") for p in path.rglob("*") if p.is_file())


def test_job_runs_to_success_and_the_model_id_is_saved(tmp_path, ft_evalset, ft_server, capsys):  # noqa: F811
    cfg_path = ft_config(tmp_path, ft_evalset, base_url=ft_server.base_url,
                         finetune_settings={"suffix": "triage", "seed": 42, "validation_share": 0.2})
    assert main(openai_cmd(cfg_path)) == 0
    captured = capsys.readouterr()
    out = captured.out

    # uploaded: the exported train and validation files, purpose fine-tune
    assert len(ft_server.files) == 2
    train = ft_server.files["file-001"]
    lines = train["content"].decode().splitlines()
    assert train["filename"] == "ftcfg-train.jsonl" and len(lines) == 10  # 13 kept, 3 to validation
    assert all(json.loads(line)["messages"][-1]["role"] == "assistant" for line in lines)
    # the job: base model, epochs, seed, suffix, both files
    job = ft_server.jobs["ftjob-001"]
    assert job.body["model"] == "gpt-4o-mini-2024-07-18"
    assert job.body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}}
    assert job.body["seed"] == 42 and job.body["suffix"] == "triage"
    assert job.body["training_file"] == "file-001" and job.body["validation_file"] == "file-002"
    # followed: events printed once each, in order
    assert out.index("Validating training file") < out.index("Fine-tuning job started") < out.index(
        "The job has successfully completed")
    assert out.count("Fine-tuning job started") == 1
    # saved where the config's fine-tuned model reads it
    model_id = "ft:gpt-4o-mini-2024-07-18:org-fake:triage:abc123"
    assert (tmp_path / "ft-model-id.txt").read_text().strip() == model_id
    assert resolve_model_id(load_config(cfg_path), "tuned") == model_id
    assert "12,345 billed training tokens = $0.04" in out
    state = json.loads((tmp_path / "ft-out" / "ftcfg-openai-job.json").read_text())
    assert state["job_id"] == "ftjob-001" and state["status"] == "succeeded" and state["seed"] == 42
    # the key went to the server and nowhere else
    assert all(h == f"Bearer {SECRET}" for h in ft_server.auth_headers)
    assert SECRET not in captured.out + captured.err
    assert SECRET not in all_text_under(tmp_path)


def test_failed_job_is_a_clear_error(tmp_path, ft_evalset, capsys):  # noqa: F811
    with FakeFineTuningServer(fail=True, error_message="line 3: invalid role") as server:
        cfg_path = ft_config(tmp_path, ft_evalset, base_url=server.base_url)
        assert main(openai_cmd(cfg_path)) == 2
    err = capsys.readouterr().err
    assert "fine-tuning job ftjob-001 failed: [invalid_training_file] line 3: invalid role (param training_file)" in err
    assert not (tmp_path / "ft-model-id.txt").exists()
    state = json.loads((tmp_path / "ft-out" / "ftcfg-openai-job.json").read_text())
    assert state["status"] == "failed" and "invalid role" in state["error"]


def test_without_model_file_the_id_goes_to_output_dir_with_the_config_line(tmp_path, ft_evalset, ft_server,  # noqa: F811
                                                                           capsys):
    cfg_path = ft_config(tmp_path, ft_evalset, base_url=ft_server.base_url)
    data = yaml.safe_load(cfg_path.read_text())
    del data["models"]["tuned"]["model_file"]
    data["models"]["tuned"]["model"] = "gpt-4o-mini"
    cfg_path.write_text(yaml.safe_dump(data))
    assert main(openai_cmd(cfg_path)) == 0
    out = capsys.readouterr().out
    saved = tmp_path / "ft-out" / "openai-model-id.txt"
    assert saved.read_text().strip() == "ft:gpt-4o-mini-2024-07-18:org-fake:abc123"
    assert f"model_file: {saved}" in out and "remove its `model:` line" in out


def test_no_wait_then_follow_the_job_later(tmp_path, ft_evalset, ft_server, capsys):  # noqa: F811
    cfg_path = ft_config(tmp_path, ft_evalset, base_url=ft_server.base_url)
    assert main(openai_cmd(cfg_path, "--no-wait")) == 0
    out = capsys.readouterr().out
    assert f"harness finetune openai {cfg_path} --job ftjob-001" in out
    assert not (tmp_path / "ft-model-id.txt").exists()
    assert main(openai_cmd(cfg_path, "--job", "ftjob-001")) == 0
    assert len(ft_server.files) == 1 and len(ft_server.jobs) == 1  # nothing uploaded or created again
    assert (tmp_path / "ft-model-id.txt").read_text().startswith("ft:gpt-4o-mini-2024-07-18:org-fake")


def test_ctrl_c_leaves_the_job_running_and_says_how_to_follow_it(tmp_path, ft_evalset, ft_server, capsys,  # noqa: F811
                                                                monkeypatch):
    cfg_path = ft_config(tmp_path, ft_evalset, base_url=ft_server.base_url)

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupt)
    assert main(openai_cmd(cfg_path)) == 130
    err = capsys.readouterr().err
    assert "job ftjob-001 keeps running at OpenAI" in err and "--job ftjob-001" in err
    assert ft_server.jobs["ftjob-001"].status != "cancelled"


def test_missing_api_key_names_the_variable(tmp_path, ft_evalset, ft_server, capsys, monkeypatch):  # noqa: F811
    monkeypatch.delenv("FT_TEST_KEY")
    cfg_path = ft_config(tmp_path, ft_evalset, base_url=ft_server.base_url)
    assert main(openai_cmd(cfg_path)) == 2
    assert "environment variable FT_TEST_KEY is not set" in capsys.readouterr().err
    assert not ft_server.requests


def test_invalid_training_file_is_not_uploaded(tmp_path, ft_evalset, ft_server, capsys):  # noqa: F811
    cfg_path = ft_config(tmp_path, ft_evalset, base_url=ft_server.base_url)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    assert main(openai_cmd(cfg_path, "--training-file", str(bad))) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1: no assistant message" in err and "at least 10" in err
    assert not ft_server.requests


def test_local_variant_is_refused(tmp_path, ft_evalset, capsys):  # noqa: F811
    cfg_path = ft_config(tmp_path, ft_evalset, provider="local")
    assert main(openai_cmd(cfg_path)) == 2
    assert "use `harness finetune local`" in capsys.readouterr().err


def test_uses_train_items_only(tmp_path, ft_evalset, ft_server):  # noqa: F811
    cfg_path = ft_config(tmp_path, ft_evalset, base_url=ft_server.base_url)
    assert main(openai_cmd(cfg_path)) == 0
    content = ft_server.files["file-001"]["content"].decode()
    assert len(content.splitlines()) == len(FT_TRAIN) - 1  # ft-dup repeats test item t2
    assert "stole my card" not in content.lower()
