"""Bad input: one readable line naming the file, line or field, and exit code 2."""

import json
import re

import pytest
import yaml

from harness.cli import main
from tests.conftest import make_config


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_valid_config_validates(tmp_path, evalset_dir, capsys):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1")
    code, out, err = run_cli(capsys, "validate", cfg)
    assert code == 0, err
    assert "4 test, 6 train, 3 docs" in out


def test_unknown_key_names_file_line_and_field(tmp_path, evalset_dir, capsys):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                      variants=[{"name": "b", "kind": "baseline", "model": "small", "shotz": 3}])
    code, _, err = run_cli(capsys, "validate", cfg)
    assert code == 2
    line = err.strip()
    assert "\n" not in line
    assert str(cfg) in line and "variants[0]: unknown key 'shotz' (did you mean 'shots'?)" in line
    expected_line = [i for i, t in enumerate(cfg.read_text().splitlines(), 1) if "shotz" in t][0]
    assert f"{cfg}:{expected_line}:" in line


def test_invalid_yaml_gives_line(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nmodels: {a: [1, 2}\n")
    code, _, err = run_cli(capsys, "validate", p)
    assert code == 2 and f"{p}:2" in err and "invalid YAML" in err


def test_missing_config_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, "validate", tmp_path / "nope.yaml")
    assert code == 2 and "file not found" in err


def test_missing_evalset_folder(tmp_path, capsys):
    cfg = make_config(tmp_path, tmp_path / "no-such-evalset", "http://127.0.0.1:9/v1")
    code, _, err = run_cli(capsys, "validate", cfg)
    assert code == 2 and "evalset: folder not found" in err


def test_variant_with_unknown_model(tmp_path, evalset_dir, capsys):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                      variants=[{"name": "b", "kind": "baseline", "model": "nope"}])
    code, _, err = run_cli(capsys, "validate", cfg)
    assert code == 2 and "unknown model 'nope'" in err and "small" in err


def test_wrong_type_field(tmp_path, evalset_dir, capsys):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", run={"concurrency": "lots"})
    code, _, err = run_cli(capsys, "validate", cfg)
    assert code == 2 and "run.concurrency" in err


def test_malformed_jsonl_line_number(tmp_path, evalset_dir, capsys):
    with (evalset_dir / "test.jsonl").open("a") as fh:
        fh.write('{"id": "t9", "input": {"text": "x"}, "expected": \n')
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1")
    code, _, err = run_cli(capsys, "validate", cfg)
    assert code == 2 and "test.jsonl:5:" in err and "not valid JSON" in err


def test_duplicate_item_ids(tmp_path, evalset_dir, capsys):
    with (evalset_dir / "test.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "t1", "input": {"text": "x"}, "expected": {"intent": "refund", "urgent": False}}) + "\n")
    code, _, err = run_cli(capsys, "validate", make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1"))
    assert code == 2 and "test.jsonl:5" in err and "duplicate id 't1'" in err and "line 1" in err


def test_expected_violating_schema(tmp_path, evalset_dir, capsys):
    with (evalset_dir / "train.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "r9", "input": {"text": "x"}, "expected": {"intent": "other", "urgent": False}}) + "\n")
    code, _, err = run_cli(capsys, "validate", make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1"))
    assert code == 2 and "train.jsonl:7" in err and "intent" in err


def test_invalid_json_schema(tmp_path, evalset_dir, capsys):
    task = yaml.safe_load((evalset_dir / "task.yaml").read_text())
    task["output_schema"] = {"type": "objekt"}
    (evalset_dir / "task.yaml").write_text(yaml.safe_dump(task))
    code, _, err = run_cli(capsys, "validate", make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1"))
    assert code == 2 and "not a valid JSON Schema" in err


def test_template_field_missing_from_input(tmp_path, evalset_dir, capsys):
    task = yaml.safe_load((evalset_dir / "task.yaml").read_text())
    task["input_template"] = "{text} / {channel}"
    (evalset_dir / "task.yaml").write_text(yaml.safe_dump(task))
    code, _, err = run_cli(capsys, "validate", make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1"))
    assert code == 2 and "test.jsonl:1" in err and "channel" in err


def test_unpriced_model_stops_before_first_call(tmp_path, evalset_dir, fake_server, capsys):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    text = cfg.read_text().replace("model: gpt-4o-mini", "model: fake-model")
    cfg.write_text(text)
    code, _, err = run_cli(capsys, "run", cfg, "--no-progress", "--results-dir", tmp_path / "r")
    assert code == 2 and "no price for model 'fake-model'" in err and "--allow-unpriced" in err
    assert fake_server.requests == []


def test_missing_api_key_variable(tmp_path, evalset_dir, capsys, monkeypatch):
    monkeypatch.delenv("CANARY_KEY_ENV", raising=False)
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                      models={"small": {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "CANARY_KEY_ENV"}})
    code, _, err = run_cli(capsys, "run", cfg, "--no-progress", "--results-dir", tmp_path / "r")
    assert code == 2 and "CANARY_KEY_ENV is not set" in err


@pytest.mark.parametrize("args", [["run"], ["run", "--variants", "x"]])
def test_run_without_config(capsys, args):
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "give a config file" in err


def _line_of(path, text):
    return [i for i, t in enumerate(path.read_text().splitlines(), 1) if text in t][0]


def test_misspelt_key_is_named_first_with_the_key_meant(tmp_path, evalset_dir, capsys):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1")
    cfg.write_text(cfg.read_text().replace("variants:", "varients:"))
    code, _, err = run_cli(capsys, "validate", cfg)
    # The missing 'variants' it leaves behind is the same cause: not shown, not counted.
    assert code == 2 and err.strip() == (f"error: {cfg}:{_line_of(cfg, 'varients')}: unknown key 'varients' "
                                         f"(did you mean 'variants'?)")


def test_unknown_key_without_a_close_match_lists_the_allowed_keys(tmp_path, evalset_dir, capsys):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", run={"parallelism": 3})
    code, _, err = run_cli(capsys, "validate", cfg)
    assert code == 2 and f"{cfg}:{_line_of(cfg, 'parallelism')}: run: unknown key 'parallelism' (allowed here: " \
        "concurrency, temperature, max_tokens," in err


def test_error_from_a_check_on_the_whole_config_names_the_items_line(tmp_path, evalset_dir, capsys):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", variants=[
        {"name": "a", "kind": "baseline", "model": "small"}, {"name": "b", "kind": "baseline", "model": "nope"}])
    code, _, err = run_cli(capsys, "validate", cfg)
    assert code == 2
    assert f"{cfg}:{_line_of(cfg, 'model: nope')}: variants[1].model: unknown model 'nope' (models defined: " \
        "small)" in err
    assert "(top level)" not in err


def _no_doubled_words(err, path):
    text = err.strip().split(f"{path}:", 1)[1]  # the message after the file name
    doubled = re.search(r"\b(\w+)\W+\1\b", text, re.IGNORECASE)
    assert doubled is None, f"{doubled.group(0)!r} in {err!r}"


@pytest.mark.parametrize(("line", "expected"), [
    ({"id": "t9", "input": "x", "expected": {"intent": "refund", "urgent": False}}, "input: should be a JSON object"),
    ({"id": "t9", "inputs": {"text": "x"}}, "unknown key 'inputs' (did you mean 'input'?)"),
    ({"id": "t9"}, "missing required key 'input'"),
    (["t9", "x"], "each line must be one JSON object with id, input and expected"),
])
def test_eval_set_line_errors_say_it_once(tmp_path, evalset_dir, capsys, line, expected):
    test_path = evalset_dir / "test.jsonl"
    with test_path.open("a") as fh:
        fh.write(json.dumps(line) + "\n")
    code, _, err = run_cli(capsys, "validate", make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1"))
    assert code == 2 and err.strip() == f"error: {test_path}:5: {expected}"
    _no_doubled_words(err, test_path)


@pytest.mark.parametrize("extra", [{"variants": "baseline"}, {"run": {"concurrency": "lots"}}])
def test_config_errors_say_it_once(tmp_path, evalset_dir, capsys, extra):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", **extra)
    code, _, err = run_cli(capsys, "validate", cfg)
    assert code == 2 and "should be a valid" in err
    _no_doubled_words(err, cfg)


def test_missing_top_level_key_is_not_named_twice(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\nevalset: somewhere\nmodels: {}\n")
    code, _, err = run_cli(capsys, "validate", p)
    assert code == 2 and err.strip() == f"error: {p}:1: missing required key 'variants'"
