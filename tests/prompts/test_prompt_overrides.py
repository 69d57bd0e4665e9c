"""A variant's own prompt (instructions / instructions_file, input_template, system): what it sends, how the
config checks it, and that the fine-tuning export trains on the very same prompt."""

import json
from pathlib import Path

import pytest
import yaml

from harness.api import run
from harness.config import load_config
from harness.data.evalset import load_evalset
from harness.errors import ConfigError
from harness.finetune.export import export
from harness.prompts.variants import instructions_text, prompt_of, render_prompt, render_training_example
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.conftest import make_config, write_jsonl

V2 = "You grade support messages for ACME Bank."


def two_prompts(tmp_path: Path, evalset: Path, url: str) -> Path:
    (tmp_path / "v2.txt").write_text(V2 + "\n")
    return make_config(tmp_path, evalset, url, variants=[
        {"name": "prompt-v1", "kind": "baseline", "model": "small", "instructions": "Classify it. Be terse."},
        {"name": "prompt-v2", "kind": "baseline", "model": "small", "instructions_file": "v2.txt",
         "system": "You are careful.", "input_template": "Customer wrote: <<{text}>>"},
    ])


def test_two_prompt_variants_send_their_own_prompts(tmp_path, evalset_dir, fake_server):
    cfg = two_prompts(tmp_path, evalset_dir, fake_server.base_url)
    res = run(cfg, RunOptions(results_dir=tmp_path / "r", progress=False, limit=1))
    by_variant = {r.variant: r.request["messages"] for r in read_records(res.run_dir / "records.jsonl")}
    v1, v2 = by_variant["prompt-v1"], by_variant["prompt-v2"]
    assert v1[0]["content"].startswith("Classify it. Be terse.\n\nAnswer with only a JSON object")
    assert v1[1]["content"] == "Message: where is my new card"  # the task's input_template
    assert v2[0]["content"].startswith(f"You are careful.\n\n{V2}\n\nAnswer with only a JSON object")
    assert v2[1]["content"] == "Customer wrote: <<where is my new card>>"
    saved = json.loads((res.run_dir / "config.json").read_text())["variants"][1]
    assert saved["instructions"] == V2 and saved["instructions_file"].endswith("v2.txt")  # the text that was used


def test_instructions_and_file_are_exclusive_and_the_file_must_exist(tmp_path, evalset_dir):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", variants=[
        {"name": "v", "kind": "baseline", "model": "small", "instructions": "x", "instructions_file": "f.txt"}])
    with pytest.raises(ConfigError, match=r"config.yaml:\d+: variants\[0\]: give instructions or instructions_file"):
        load_config(cfg)
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", variants=[
        {"name": "v", "kind": "baseline", "model": "small", "instructions_file": "nope.txt"}])
    with pytest.raises(ConfigError, match=r"variants\[0\].instructions_file: file not found"):
        load_config(cfg)
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", variants=[
        {"name": "v", "kind": "baseline", "model": "small", "instruction": "typo"}])
    with pytest.raises(ConfigError, match="unknown key 'instruction'"):
        load_config(cfg)


def test_an_input_template_the_items_cannot_fill_stops_before_any_call(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, variants=[
        {"name": "v", "kind": "baseline", "model": "small", "input_template": "{text} from {customer}"}])
    with pytest.raises(ConfigError, match="input_template uses customer, which item 't1'"):
        run(cfg, RunOptions(results_dir=tmp_path / "r", progress=False))
    assert fake_server.requests == []


def test_few_shot_examples_use_the_variants_template(tmp_path, evalset_dir):
    ev = load_evalset(evalset_dir)
    prompt = prompt_of({"input_template": "Q: {text}", "system": "S."})
    msgs = render_prompt(ev, {"text": "hello"}, examples=ev.train[:1], prompt=prompt)
    assert [m["content"] for m in msgs[1:]] == ["Q: my card never came", '{"intent": "card_arrival", "urgent": false}',
                                                "Q: hello"]
    assert instructions_text(ev, prompt).startswith("S.\n\nClassify the customer's message.")
    assert prompt_of({"name": "x", "kind": "baseline"}) is None


def test_export_trains_on_the_fine_tuned_variants_own_prompt(tmp_path, evalset_dir):
    cfg_path = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", variants=[
        {"name": "baseline", "kind": "baseline", "model": "small"},
        {"name": "tuned", "kind": "fine_tuned", "model": "small", "instructions": "Label the intent.",
         "input_template": "Text: {text}", "system": "House rules apply."}],
        finetune={"output_dir": str(tmp_path / "ft")})
    cfg = load_config(cfg_path)
    ev = load_evalset(cfg.evalset)
    res = export(cfg, ev, out=tmp_path / "train.jsonl")
    first = json.loads(res.train_path.read_text().splitlines()[0])["messages"]
    assert first[0]["content"].startswith("House rules apply.\n\nLabel the intent.")
    assert first[1]["content"] == "Text: my card never came"
    # exactly what the variant is evaluated with
    variant = cfg.variant("tuned")
    assert first == render_training_example(ev, ev.train[0], prompt=prompt_of(variant))
    assert first[:-1] == render_prompt(ev, ev.train[0].input, prompt=prompt_of(variant))


def test_free_text_examples_show_the_expected_text(tmp_path):
    d = tmp_path / "ev"
    d.mkdir()
    (d / "task.yaml").write_text(yaml.safe_dump({"instructions": "Reply politely.", "input_template": "{q}"}))
    write_jsonl(d / "test.jsonl", [{"id": "t", "input": {"q": "hi"}, "expected": ["Hello.", "Hi."]}])
    write_jsonl(d / "train.jsonl", [{"id": "r", "input": {"q": "hey"}, "expected": ["Hey there.", "Hello."]}])
    ev = load_evalset(d)
    assert ev.free_text and ev.schema is None
    msgs = render_training_example(ev, ev.train[0])
    assert msgs == [{"role": "system", "content": "Reply politely."}, {"role": "user", "content": "hey"},
                    {"role": "assistant", "content": "Hey there."}]  # the first acceptable answer
