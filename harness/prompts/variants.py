"""How an item becomes messages. One renderer serves evaluation and fine-tuning export, so they never drift: every
variant kind (harness/prompts/kinds/) renders through render_prompt, and the export writes render_training_example,
which is render_prompt plus the expected answer."""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.config import VariantConfig
from harness.data.conversation import transcript
from harness.data.evalset import EvalSet
from harness.data.tool_spec import expected_calls
from harness.records import EvalItem, Message

if TYPE_CHECKING:
    import numpy as np

EmbedFn = Callable[[Sequence[str]], "np.ndarray"]


@dataclass(frozen=True)
class PromptSpec:
    """A variant's prompt overrides (VariantConfig `instructions`/`instructions_file`, `input_template`,
    `system`); what is not overridden comes from task.yaml. The same spec renders the variant's eval prompts
    and, for a fine-tuned variant, its training examples."""

    instructions: str | None = None
    input_template: str | None = None
    system: str | None = None


def prompt_of(variant: VariantConfig | dict[str, Any] | None) -> PromptSpec | None:
    """The overrides of a variant (or of its settings as saved in a run manifest); None when it has none."""
    if variant is None:
        return None
    get = variant.get if isinstance(variant, dict) else lambda k: getattr(variant, k, None)
    spec = PromptSpec(get("instructions"), get("input_template"), get("system"))
    return spec if spec != PromptSpec() else None


def template_problem(template: str, values: dict[str, Any]) -> str | None:
    """Why `template` cannot be filled from `values`: the first placeholder that fails and why, or None."""
    try:
        template.format_map(values)
        return None
    except (KeyError, IndexError, AttributeError, ValueError, TypeError):
        pass
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        try:
            field.format_map(values)
        except KeyError as exc:
            return f"{field}: the input has no field {exc.args[0]!r}"
        except (IndexError, AttributeError, ValueError, TypeError) as exc:
            return f"{field}: {exc}"
    return "the template cannot be filled"


def _unfillable(template: str, evalset: EvalSet) -> str | None:
    for split, items in (("test", evalset.test), ("train", evalset.train)):
        for item in items:
            if evalset.turns(item.input) is not None:
                continue  # a conversation is sent as its turns, not through a template
            problem = template_problem(template, item.input)
            if problem:
                return f"cannot be filled for item {item.id!r} of {split}.jsonl: {problem}"
    return None


def check_prompt(variant: VariantConfig, evalset: EvalSet) -> str | None:
    """Why the variant's prompt cannot be rendered for every item (test and train), naming the item and the
    placeholder; None when it can. The task's own input_template is checked when the variant has none."""
    template = variant.input_template
    if template is None:
        problem = _unfillable(evalset.task.input_template, evalset) if evalset.task.input_template else None
        return (f"variants: {variant.name}: the task's input_template ({evalset.path / 'task.yaml'}) {problem}"
                if problem else None)
    from harness.data.evalset import template_fields

    try:
        keys = template_fields(template)
    except ValueError as exc:
        return f"variants: {variant.name}: input_template: {exc} (use {{field}} placeholders; double braces for literal ones)"
    for item in [*evalset.test, *evalset.train]:
        absent = [k for k in keys if k not in item.input] if evalset.turns(item.input) is None else []
        if absent:
            return (f"variants: {variant.name}: input_template uses {', '.join(absent)}, which item {item.id!r} "
                    f"of {evalset.path.name} does not have in its input")
    problem = _unfillable(template, evalset)
    return f"variants: {variant.name}: input_template {problem}" if problem else None


def instructions_text(evalset: EvalSet, prompt: PromptSpec | None = None) -> str:
    """The system text: the variant's `system` preamble (if any), its instructions (or the task's) and, for a
    JSON task, the schema the answer must match. A free-text task's answer is the text itself, so no format
    sentence is added."""
    cache: dict[PromptSpec | None, str] = evalset.__dict__.setdefault("_instructions_texts", {})
    cached = cache.get(prompt)
    if cached is None:
        text = (prompt.instructions if prompt and prompt.instructions else evalset.instructions).strip()
        if evalset.schema is not None:
            schema = json.dumps(evalset.schema, separators=(",", ":"), ensure_ascii=False)
            text = f"{text}\n\nAnswer with only a JSON object that matches this JSON Schema:\n{schema}"
        if prompt and prompt.system:
            text = f"{prompt.system.strip()}\n\n{text}"
        cache[prompt] = cached = text
    return cached


def answer_text(evalset: EvalSet, expected: Any) -> str:
    """The assistant turn for an example: exactly what the model should write — compact JSON for a JSON
    task, the expected text (the first acceptable one of a list) for a free-text task."""
    if evalset.schema is None:
        return expected if isinstance(expected, str) else str(expected[0]) if isinstance(expected, list) else ""
    return json.dumps(expected, ensure_ascii=False)


def answer_message(evalset: EvalSet, expected: Any, call_prefix: str = "call_") -> dict[str, Any]:
    """The assistant turn that answers an example: its text, or, for expected tool calls (a task with tools),
    the calls in OpenAI's message format (arguments as JSON text, ids numbered within the turn)."""
    calls = expected_calls(expected) if evalset.tools else None
    if calls is None:
        return {"role": "assistant", "content": answer_text(evalset, expected)}
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"{call_prefix}{n + 1}", "type": "function",
         "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments") or {}, ensure_ascii=False)}}
        for n, c in enumerate(calls)]}


def example_turns(evalset: EvalSet, example: EvalItem, prompt: PromptSpec | None = None, n: int = 1) -> list[Message]:
    """The n-th worked example inside a prompt: its input turns and its answer. A call the example makes is
    followed by a tool turn per call (the chat format requires one), saying it is an example and was not run."""
    answer = answer_message(evalset, example.expected, call_prefix=f"example{n}_call_")
    turns: list[Any] = [*input_turns(evalset, example.input, prompt), answer]
    turns += [{"role": "tool", "tool_call_id": c["id"], "content": "(example call, not run)"}
              for c in answer.get("tool_calls") or []]
    return turns


def input_turns(evalset: EvalSet, item_input: dict[str, Any], prompt: PromptSpec | None = None) -> list[Message]:
    """An item's turns: a conversation as it is, any other input as one user turn through the template."""
    turns = evalset.turns(item_input)
    return turns if turns is not None else [{"role": "user", "content": input_text(evalset, item_input, prompt)}]


def message_chars(message: dict[str, Any]) -> int:
    """Characters of a message's content and tool calls (what a training example is billed on, roughly)."""
    calls = message.get("tool_calls")
    return len(message.get("content") or "") + (len(json.dumps(calls, ensure_ascii=False)) if calls else 0)


def input_text(evalset: EvalSet, item_input: dict[str, Any], prompt: PromptSpec | None = None) -> str:
    """The item's input as text: through the variant's (or the task's) template, a conversation as its transcript."""
    template = prompt.input_template if prompt and prompt.input_template else evalset.task.input_template
    turns = evalset.turns(item_input)
    if turns is not None or template is None:
        return transcript(turns or [])
    return template.format_map(item_input)


def passages_block(passages: list[Any]) -> str:
    parts = [f"[{p.doc_id}]\n{p.text.strip()}" for p in passages]
    return "Reference documents:\n\n" + "\n\n".join(parts)


def render_prompt(
    evalset: EvalSet,
    item_input: dict[str, Any],
    *,
    examples: Sequence[EvalItem] = (),
    passages: Sequence[Any] = (),
    system_role: bool = True,
    prompt: PromptSpec | None = None,
) -> list[Message]:
    """The one prompt renderer. `system_role=False` folds the instructions into the first user turn,
    for chat formats (gemma) that drop system messages. `prompt` holds the variant's overrides."""
    instructions = instructions_text(evalset, prompt)
    messages: list[Message] = [turn for n, ex in enumerate(examples, start=1)
                               for turn in example_turns(evalset, ex, prompt, n)]
    turns = input_turns(evalset, item_input, prompt)
    if passages:  # above the turn to answer (a conversation's last user turn), its history left as it was
        turns[-1] = {"role": "user", "content": f"{passages_block(list(passages))}\n\n---\n\n{turns[-1]['content']}"}
    messages += turns
    if system_role:
        return [{"role": "system", "content": instructions}, *messages]
    first = messages[0]
    if first["role"] != "user":  # a conversation that opens with the assistant keeps that turn as it was
        return [{"role": "user", "content": instructions}, *messages]
    messages[0] = {"role": "user", "content": f"{instructions}\n\n{first['content']}"}
    return messages


def render_training_example(evalset: EvalSet, item: EvalItem, *, system_role: bool = True,
                            prompt: PromptSpec | None = None) -> list[Message]:
    """A fine-tuning example: the fine-tuned variant's prompt (its overrides included) plus the expected
    answer."""
    return [*render_prompt(evalset, item.input, system_role=system_role, prompt=prompt),
            answer_message(evalset, item.expected)]


@dataclass
class Prepared:
    messages: list[Message]
    retrieved_doc_ids: list[str] | None = None
    shot_ids: list[str] | None = None
    # An item whose prompt could not be prepared (its query embedding failed after retries): an error record,
    # never a call with an empty retrieval.
    error: str | None = None
    error_kind: str | None = None
    # What retrieval cost for this item (rag.embedding's query embedding), added to the record's cost.
    retrieval_cost: dict[str, Any] | None = None


def default_embed(texts: Sequence[str]) -> np.ndarray:
    """The embedding model (harness.retrieval.embeddings), imported when first used."""
    from harness.retrieval.embeddings import embed

    return embed(texts)


def query_texts(evalset: EvalSet, items: list[EvalItem]) -> list[str]:
    """What similarity selection and retrieval embed for each item: its rendered input (one text serves both; a
    conversation's last turn first, then its history)."""
    return [evalset.query_text(i) for i in items]


BatchPreparer = Callable[[list[EvalItem], "np.ndarray"], dict[str, Prepared]]
