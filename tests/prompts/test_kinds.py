"""Variant kinds are registered classes (issue 19, points 2 and 5): a kind renders an item's messages through the
one renderer the fine-tuning export uses, declares what it needs prepared before the first call (prepared once per
fingerprint), says why it must be skipped, and validates its own config fields; adding one is one class plus its
registration, and nothing outside harness/prompts/ branches on a kind's name."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from pydantic import Field

import harness
from harness import variant_kinds
from harness.config import VariantConfig, load_config
from harness.data.evalset import load_evalset
from harness.errors import ConfigError
from harness.finetune.export import export
from harness.prompts.kinds.base import Need, PrepareContext, Resources, VariantKind, kind_of
from harness.prompts.variants import Prepared, input_text, instructions_text
from harness.records import EvalItem, Message
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.conftest import REPO, make_config

BUILTIN = ["baseline", "few_shot", "fine_tuned", "rag"]


class Reversed(VariantKind):
    """A kind written in a test: the item's input first, the instructions after it, in one user turn."""

    name: ClassVar[str] = "reversed"

    def render(self, evalset, item_input, *, system_role, examples=(), passages=()) -> list[Message]:
        return [{"role": "user", "content": f"{input_text(evalset, item_input, self.prompt)}\n\n"
                                            f"{instructions_text(evalset, self.prompt)}"}]


BUILDS: list[str] = []


def build_stamp(ctx: PrepareContext) -> str:
    BUILDS.append(ctx.evalset.name)
    return f"(stamp of {ctx.evalset.name})"


class Stamped(VariantKind):
    """A test kind with a parameter of its own rule (shots >= 1), a need, and a reason to be skipped."""

    name: ClassVar[str] = "stamped"
    shots: int = Field(default=1, ge=1)

    def needs(self, ctx: PrepareContext) -> list[Need]:
        return [Need("stamp", f"stamp|{ctx.evalset.content_hash}", build_stamp)]

    def skip_reason(self, ctx: PrepareContext) -> str | None:
        if self.shots > len(ctx.evalset.train):
            return f"stamped needs {self.shots} train items; train.jsonl has {len(ctx.evalset.train)}"
        return None

    def prepare(self, ctx: PrepareContext, items: list[EvalItem], *, system_role: bool,
                resources: Resources | None = None, embed_fn: Any = None) -> dict[str, Prepared]:
        stamp = (self.build_needs(ctx) if resources is None else resources)["stamp"]
        out = super().prepare(ctx, items, system_role=system_role, resources=resources)
        for p in out.values():
            p.messages[-1] = {"role": "user", "content": f"{p.messages[-1]['content']}\n{stamp}"}
        return out


@pytest.fixture
def test_kinds():
    variant_kinds.register(Reversed)
    variant_kinds.register(Stamped)
    BUILDS.clear()
    yield
    variant_kinds.unregister("reversed")
    variant_kinds.unregister("stamped")


def config_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return str(exc.value)


def test_the_lookup_error_lists_the_valid_kinds(tmp_path, evalset_dir):
    with pytest.raises(variant_kinds.UnknownKind, match=r"unknown variant kind 'fewshot' \(valid: "
                                                         + ", ".join(BUILTIN) + r"\)"):
        variant_kinds.kind_class("fewshot")
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                      variants=[{"name": "fs", "kind": "fewshot", "model": "small"}])
    line = next(n for n, text in enumerate(config_lines(cfg), 1) if "fewshot" in text)
    assert load_error(cfg) == (f"{cfg}:{line}: variants[0].kind: unknown variant kind 'fewshot' "
                               f"(valid: {', '.join(BUILTIN)})")


def test_each_kind_validates_its_own_fields(tmp_path, evalset_dir, test_kinds):
    def error(variant: dict[str, Any]) -> str:
        cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", variants=[{"name": "v", "model": "small",
                                                                                      **variant}])
        return load_error(cfg)

    assert error({"kind": "few_shot", "selection": "random"}).endswith(
        "variants[0].selection: should be 'first', 'stratified' or 'similar'")
    assert error({"kind": "rag", "top_k": 0}).endswith("variants[0].top_k: should be greater than or equal to 1")
    # The test kind's own rule on a shared key, with the line of that key.
    err = error({"kind": "stamped", "shots": 0})
    assert err.endswith("variants[0].shots: should be greater than or equal to 1")
    assert err.split(":")[1] == str(next(n for n, t in enumerate(config_lines(tmp_path / "config.yaml"), 1)
                                         if "shots" in t))
    # A key that is not a kind's parameter is its business, not an error: a baseline ignores top_k.
    assert VariantConfig(name="b", kind="baseline", model="small", top_k=0).top_k == 0
    assert "valid: baseline, few_shot, fine_tuned, rag, reversed, stamped" in error({"kind": "nope"})


def test_registering_is_checked():
    class OtherRag(VariantKind):
        name: ClassVar[str] = "rag"

    with pytest.raises(ValueError, match="'rag' is already registered"):
        variant_kinds.register(OtherRag)
    with pytest.raises(TypeError, match="temperature_k is not a variant key"):
        class Odd(VariantKind):  # a parameter the config has no key for
            temperature_k: int = 1


def test_a_kind_registered_in_a_test_runs_end_to_end(tmp_path, evalset_dir, fake_server, test_kinds):
    variants = [{"name": "baseline", "kind": "baseline", "model": "small"},
                {"name": "flipped", "kind": "reversed", "model": "small"},
                {"name": "stamp-1", "kind": "stamped", "model": "small"},
                {"name": "stamp-2", "kind": "stamped", "model": "small", "instructions": "Say the intent."},
                {"name": "stamp-99", "kind": "stamped", "model": "small", "shots": 99}]
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, variants=variants)
    res = harness.run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False, use_cache=False))
    assert res.status == "completed"
    ev = load_evalset(evalset_dir)
    recs = {(r.variant, r.item_id): r for r in read_records(res.run_dir / "records.jsonl")}
    assert {v for v, _ in recs} == {"baseline", "flipped", "stamp-1", "stamp-2"}
    for item in ev.test:
        flipped = recs[("flipped", item.id)]
        assert flipped.request["messages"] == [
            {"role": "user", "content": f"Message: {item.input['text']}\n\n{instructions_text(ev)}"}]
        assert flipped.error is None
        assert recs[("baseline", item.id)].request["messages"][0]["role"] == "system"
        for name in ("stamp-1", "stamp-2"):
            assert recs[(name, item.id)].request["messages"][-1]["content"].endswith(f"\n(stamp of {ev.name})")
    assert BUILDS == [ev.name], "two variants with one fingerprint: their need is prepared once"
    summary = res.summary.set_index("variant")
    assert summary.loc["flipped", "kind"] == "reversed" and summary.loc["flipped", "accuracy"] == 1.0
    assert res.skipped["stamp-99"] == "stamped needs 99 train items; train.jsonl has 6"


def test_the_built_in_kinds_say_why_they_are_skipped(tmp_path, evalset_dir, fake_server):
    shutil.rmtree(evalset_dir / "docs")
    (evalset_dir / "train.jsonl").unlink()
    variants = [{"name": "baseline", "kind": "baseline", "model": "small"},
                {"name": "fs", "kind": "few_shot", "model": "small"},
                {"name": "rag", "kind": "rag", "model": "small"}]
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, variants=variants)
    res = harness.run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False, use_cache=False))
    path = load_evalset(evalset_dir).path
    assert res.skipped == {
        "fs": f"few_shot needs train.jsonl in the eval set (the example pool); add it under {path}, or leave this "
              f"variant out (--variants)",
        "rag": f"the eval set has no docs/ or docs.jsonl under {path}; add the knowledge base there, or leave this "
               f"variant out (--variants)"}
    assert {r.variant for r in read_records(res.run_dir / "records.jsonl")} == {"baseline"}


def test_the_fine_tuned_kind_renders_what_the_export_trains_on(tmp_path, evalset_dir):
    cfg_path = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", variants=[
        {"name": "ft", "kind": "fine_tuned", "model": "small", "system": "You are the bank's triage desk.",
         "instructions": "Label the message.", "input_template": "Customer wrote: {text}"}])
    cfg, ev = load_config(cfg_path), load_evalset(evalset_dir)
    res = export(cfg, ev, out=tmp_path / "train.jsonl")
    kind = kind_of(cfg.variant("ft"))
    lines = [json.loads(line)["messages"] for line in res.train_path.read_text().splitlines()]
    prepared = kind.prepare(PrepareContext(ev), res.split.train, system_role=res.system_role)
    assert len(lines) == len(res.split.train) == 6
    for item, messages in zip(res.split.train, lines, strict=True):
        assert messages[:-1] == prepared[item.id].messages
        assert messages[0]["content"].startswith("You are the bank's triage desk.\n\nLabel the message.")
        assert messages[-1]["role"] == "assistant"


def kind_name_branches(root: Path) -> list[str]:
    """Comparisons against a built-in kind's name (`kind == "rag"`, `x in ("baseline", ...)`) outside prompts/."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if "prompts" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            consts = []
            for side in (node.left, *node.comparators):
                elts = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                consts += [e.value for e in elts if isinstance(e, ast.Constant)]
            if set(BUILTIN) & set(consts):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_nothing_outside_the_prompts_branches_on_a_kind_name():
    assert kind_name_branches(REPO / "harness") == []
    assert "few_shot" in yaml.safe_dump(variant_kinds.BUILTIN)  # the names the scan looks for are the real ones
