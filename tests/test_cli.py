"""The first hour with the CLI (issue 18): `validate` checks what `run` checks before its first call, a run
that stops before its first call leaves no dead folder, bad arguments and non-UTF-8 files get one line,
`--force` replaces a finished run, and every option has help text."""

from __future__ import annotations

import argparse
import json
import re

import pytest
import yaml

from harness.cli import _parser, main
from tests.conftest import REPO, make_config


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(err: str) -> str:
    """The one `error:` line of stderr (a price-age warning may precede it, depending on today's date)."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    return errors[0]


def readme_config(tmp_path, evalset_dir):
    """The README's own config ("Pointing a config at your model"): its fine-tuned variant reads its model id
    from a `model_file` that `harness finetune openai` has not written yet."""
    section = (REPO / "README.md").read_text().split("## Pointing a config at your model", 1)[1]
    data = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert data["models"]["ft"].get("model_file") and not (tmp_path / data["models"]["ft"]["model_file"]).exists()
    data["evalset"] = str(evalset_dir)
    data.pop("pricing", None)  # the README's configs/pricing.yaml is the user's own file
    path = tmp_path / "readme.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- 1. validate checks what run checks -----------------------------------------------------------------

def test_validate_readme_model_file_config_skips_the_untrained_variant(tmp_path, evalset_dir, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    code, out, err = run_cli(capsys, "validate", readme_config(tmp_path, evalset_dir))
    assert code == 0, out + err
    assert re.search(r"^skipped: fine-tuned: no fine-tuned model id in .*openai-model-id\.txt yet; create it with "
                     r"`harness finetune openai ", out, re.M), out
    assert "NO PRICE" not in out and "error" not in err
    assert "would run 3 variant(s) and skip 1" in out


def test_validate_unset_key_is_an_error_line_saying_what_to_do(tmp_path, evalset_dir, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, _, err = run_cli(capsys, "validate", readme_config(tmp_path, evalset_dir))
    assert code == 2
    assert "error: models.mini: environment variable OPENAI_API_KEY is not set; export it" in err


def test_validate_every_exit_2_prints_an_error_line(tmp_path, evalset_dir, fake_server, capsys, monkeypatch):
    """An unpriced model, an unset key of an openai-compatible endpoint (which validate did not check) and a
    prompt items cannot fill: each an `error:` line, all of them listed, as `run` would stop on them."""
    monkeypatch.delenv("CANARY_GATEWAY_KEY", raising=False)
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, variants=[
        {"name": "a", "kind": "baseline", "model": "small"},
        {"name": "b", "kind": "baseline", "model": "gw", "input_template": "{nope}"}],
        models={"small": {"provider": "openai-compatible", "base_url": fake_server.base_url, "model": "fake-model"},
                "gw": {"provider": "openai-compatible", "base_url": fake_server.base_url, "model": "gpt-4o-mini",
                       "api_key_env": "CANARY_GATEWAY_KEY"}})
    code, out, err = run_cli(capsys, "validate", cfg)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3, err
    assert "no price for model 'fake-model'" in errors[0] and "--allow-unpriced" in errors[0]
    assert "CANARY_GATEWAY_KEY is not set" in errors[1]
    assert "input_template uses nope" in errors[2]
    assert all(line.startswith("error: ") for line in err.splitlines())
    # run stops on the same first problem, before any call
    code, _, run_err = run_cli(capsys, "run", cfg, "--no-progress", "--results-dir", tmp_path / "r")
    assert code == 2 and errors[0].removeprefix("error: ") in run_err and "2 more" in run_err
    assert fake_server.requests == []
    # --allow-unpriced: the price is no longer an error, for validate as for run
    code, _, err = run_cli(capsys, "validate", cfg, "--allow-unpriced")
    assert code == 2 and "no price" not in err and "CANARY_GATEWAY_KEY" in err


def test_validate_and_run_agree_on_skipped_variants(tmp_path, evalset_dir, fake_server, capsys):
    """A set without a train split, and a fine-tuned model not trained yet: validate said "needs train.jsonl"
    and exit 2, while run skipped the variant and ran the others."""
    (evalset_dir / "train.jsonl").unlink()
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, variants=[
        {"name": "baseline", "kind": "baseline", "model": "small"},
        {"name": "few-shot", "kind": "few_shot", "model": "small", "shots": 2, "selection": "first"},
        {"name": "fine-tuned", "kind": "fine_tuned", "model": "ft"}],
        models={"small": {"provider": "openai-compatible", "base_url": fake_server.base_url, "model": "gpt-4o-mini"},
                "ft": {"provider": "openai-compatible", "base_url": fake_server.base_url,
                       "model_file": str(tmp_path / "ft-model-id.txt")}})
    code, out, err = run_cli(capsys, "validate", cfg)
    assert code == 0, out + err
    said = dict(re.findall(r"^skipped: ([\w-]+): (.*)$", out, re.M))
    assert set(said) == {"few-shot", "fine-tuned"}
    assert "needs train.jsonl" in said["few-shot"] and "leave this variant out" in said["few-shot"]
    code, out, err = run_cli(capsys, "run", cfg, "--no-progress", "--out", tmp_path / "run")
    assert code == 0, err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    ran = {name: v["skipped"] for name, v in manifest["variants"].items() if v["skipped"]}
    assert ran == said
    assert len(fake_server.requests) == 4  # baseline only


# -- 2. no dead run folders ---------------------------------------------------------------------------

@pytest.mark.parametrize("problem", ["unset key", "unpriced", "bad prompt"])
def test_run_that_stops_before_its_first_call_leaves_no_folder(tmp_path, evalset_dir, fake_server, capsys,
                                                               monkeypatch, problem):
    monkeypatch.delenv("CANARY_KEY_ENV", raising=False)
    small = {"provider": "openai-compatible", "base_url": fake_server.base_url, "model": "gpt-4o-mini"}
    variant = {"name": "b", "kind": "baseline", "model": "small"}
    if problem == "unset key":
        small = {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "CANARY_KEY_ENV"}
    elif problem == "unpriced":
        small["model"] = "fake-model"
    else:
        variant["input_template"] = "{missing_field}"
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, variants=[variant], models={"small": small})
    for where in (["--out", tmp_path / "run"], ["--results-dir", tmp_path / "results"]):
        code, _, err = run_cli(capsys, "run", cfg, "--no-progress", *where)
        assert code == 2 and one_line(err)
    assert not (tmp_path / "run").exists() and not (tmp_path / "results").exists()
    assert fake_server.requests == []


def test_run_that_fails_while_planning_says_why_in_its_manifest(tmp_path, evalset_dir, fake_server, capsys):
    """A problem found after the folder exists (here: the Chroma server is down) still ends the manifest as
    `failed` with the reason, never `running`."""
    from harness.models.probe import free_port

    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url,
                      variants=[{"name": "rag", "kind": "rag", "model": "small"}],
                      rag={"server": f"http://127.0.0.1:{free_port()}"})
    code, _, err = run_cli(capsys, "run", cfg, "--no-progress", "--no-cache", "--out", tmp_path / "run")
    assert code == 2 and "cannot reach the Chroma server" in one_line(err)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "cannot reach the Chroma server" in manifest["message"]
    assert fake_server.requests == []


def test_report_refuses_a_folder_with_no_records(tmp_path, capsys):
    dead = tmp_path / "dead"
    dead.mkdir()
    (dead / "manifest.json").write_text(json.dumps({"run_id": "dead", "status": "failed",
                                                    "message": "models.x: no price for model 'y'\nmore"}))
    (dead / "config.json").write_text("{}")
    code, _, err = run_cli(capsys, "report", dead)
    line = one_line(err)
    assert code == 2 and "no records to report" in line and "status failed: models.x: no price" in line
    assert not (dead / "summary.csv").exists()


# -- 3. one line, never a traceback ----------------------------------------------------------------------

def test_prices_with_a_missing_pricing_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, "prices", "--pricing", tmp_path / "missing.yaml")
    assert code == 2 and "missing.yaml: price table not found" in one_line(err)


@pytest.mark.parametrize("limit", ["-5", "0"])
def test_limit_below_one_is_refused(tmp_path, evalset_dir, fake_server, capsys, limit):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    code, _, err = run_cli(capsys, "run", cfg, "--limit", limit, "--no-progress", "--out", tmp_path / "run")
    assert code == 2 and f"--limit {limit}: give a number of items of 1 or more" in one_line(err)
    assert fake_server.requests == [] and not (tmp_path / "run").exists()


def test_api_limit_below_one_names_the_keyword(tmp_path, evalset_dir, fake_server):
    import harness
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match=r"limit=0: give 1 or more"):
        harness.run(make_config(tmp_path, evalset_dir, fake_server.base_url), limit=0, progress=False)
    assert fake_server.requests == []


LATIN1 = "caf\xe9 ol\xe9".encode("latin-1")


@pytest.mark.parametrize("which", ["config", "test.jsonl", "task.yaml", "docs", "pricing"])
def test_a_file_that_is_not_utf8_names_the_file(tmp_path, evalset_dir, capsys, which):
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  gpt-4o-mini: {input: 0.15, output: 0.60}\n")
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", pricing=str(prices))
    target, line = {"config": (cfg, 2), "test.jsonl": (evalset_dir / "test.jsonl", 5),
                    "task.yaml": (evalset_dir / "task.yaml", 1), "docs": (evalset_dir / "docs" / "delivery.md", 1),
                    "pricing": (prices, 3)}[which]
    if which == "config":
        target.write_bytes(target.read_bytes().replace(b"name: t\n", b"name: t\n# " + LATIN1 + b"\n"))
    elif which == "task.yaml":
        target.write_bytes(b"# " + LATIN1 + b"\n" + target.read_bytes())
    else:
        target.write_bytes(target.read_bytes() + b"# " + LATIN1 + b"\n")
    code, _, err = run_cli(capsys, "validate", cfg)
    line_text = one_line(err)
    assert code == 2 and f"{target}:{line}: not UTF-8 text (byte 0xe9)" in line_text and "save it as UTF-8" in line_text


def test_import_of_a_file_that_is_not_utf8(tmp_path, capsys):
    src = tmp_path / "data.csv"
    src.write_bytes(b"text,label\n" + LATIN1 + b",a\n")
    code, _, err = run_cli(capsys, "import", "csv", src, "--input-col", "text", "--label-col", "label",
                           "--out", tmp_path / "es")
    assert code == 2 and f"{src}:2: not UTF-8 text" in one_line(err)


# -- 4. --force replaces a finished run ----------------------------------------------------------------

def test_force_replaces_a_finished_run(tmp_path, evalset_dir, fake_server, capsys):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    out = tmp_path / "accepted"
    assert run_cli(capsys, "run", cfg, "--no-progress", "--out", out)[0] == 0
    first = json.loads((out / "manifest.json").read_text())["run_id"]
    (out / "stale-note.txt").write_text("from the first run")
    code, _, err = run_cli(capsys, "run", cfg, "--no-progress", "--out", out)
    assert code == 2 and "already holds a run" in err and "--force to replace it" in err
    code, _, err = run_cli(capsys, "run", cfg, "--no-progress", "--out", out, "--force", "--no-cache")
    assert code == 0, err
    assert f"--force: replaced the run in {out} (run {first}, status completed" in err and "4 records" in err
    assert not (out / "stale-note.txt").exists()
    assert len((out / "records.jsonl").read_text().splitlines()) == 4
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"


def test_force_keeps_the_old_run_when_the_new_one_cannot_start(tmp_path, evalset_dir, fake_server, capsys):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    out = tmp_path / "accepted"
    assert run_cli(capsys, "run", cfg, "--no-progress", "--out", out)[0] == 0
    before = (out / "records.jsonl").read_bytes()
    cfg.write_text(cfg.read_text().replace("model: gpt-4o-mini", "model: fake-model"))  # unpriced now
    code, _, err = run_cli(capsys, "run", cfg, "--no-progress", "--out", out, "--force")
    assert code == 2 and "no price" in err and "replaced" not in err
    assert (out / "records.jsonl").read_bytes() == before


def test_force_never_deletes_a_folder_that_is_not_a_run(tmp_path, evalset_dir, fake_server, capsys):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "records.jsonl").write_text("my own notes\n")  # a records.jsonl, but no manifest.json
    code, _, err = run_cli(capsys, "run", cfg, "--no-progress", "--out", mine, "--force")
    assert code == 2 and "not a run folder" in one_line(err) and "will not delete it" in err
    assert (mine / "records.jsonl").read_text() == "my own notes\n"
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("keep")
    code, _, err = run_cli(capsys, "run", cfg, "--no-progress", "--out", other, "--force")
    assert code == 0 and "replaced" not in err
    assert (other / "keep.txt").read_text() == "keep" and (other / "records.jsonl").exists()


@pytest.mark.parametrize("args", [["--force"], ["--force", "--resume", "x", "--out", "y"]])
def test_force_needs_out_and_not_resume(tmp_path, evalset_dir, capsys, args):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1")
    code, _, err = run_cli(capsys, "run", cfg, *args)
    assert code == 2 and "--force replaces the run folder named by --out" in one_line(err)


# -- 12. help text ---------------------------------------------------------------------------------------

def _commands(parser: argparse.ArgumentParser, path: str = "harness"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert listed.get(name), f"{path} {name}: no description in the command list"
                assert len(listed[name]) <= 66, f"{path} {name}: its description wraps in the command list"
                yield from _commands(sub, f"{path} {name}")


def test_every_option_of_every_command_has_help():
    seen = 0
    for path, parser in _commands(_parser()):
        assert parser.description, f"{path} --help has no description"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help.strip(), f"{path}: {name} has no help text"
            assert "\n" not in action.help, f"{path}: {name}: help is more than one line"
            seen += 1
    assert seen > 60


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("validate", "run", "report", "compare", "merge", "import", "serve", "finetune", "prices"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), command
