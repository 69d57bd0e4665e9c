"""The LoRA training examples: token ids of exactly the text llama.cpp sends, and the order they are seen in.

The training text is what llama-cpp-python's `gemma` chat format sends for the same messages (system
messages dropped, `<start_of_turn>user/model` turns), and the messages come from the fine-tuned variant's own
renderer, so the model is trained on the very prompts it is evaluated on. The loss covers only the answer
tokens (and the `<end_of_turn>` that ends them), so each example records where its prompt ends.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.data.evalset import EvalSet
from harness.finetune.console import Out
from harness.prompts.variants import PromptSpec, render_training_example
from harness.records import EvalItem, Message

MAX_SEQ_TOKENS = 2048  # the local server's n_ctx: a longer example could never be answered there anyway
END_OF_TURN = "<end_of_turn>"


def gemma_prompt(messages: list[Message]) -> str:
    """llama-cpp-python's `format_gemma`, reproduced: system messages dropped, a turn with empty content
    written as its bare role header, and the model's turn opened at the end."""
    roles = {"user": "<start_of_turn>user\n", "assistant": "<start_of_turn>model\n"}
    text = ""
    for m in messages:
        role = roles.get(m["role"])
        if role is None:
            continue
        text += (role + m["content"] + f"{END_OF_TURN}\n") if m["content"] else role
    return text + roles["assistant"]


def training_text(messages: list[Message]) -> tuple[str, str]:
    """(prompt, answer): the prompt exactly as the server would send it, the answer ended the way the
    model must learn to end it (llama.cpp stops on `<end_of_turn>`)."""
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("a training example must end with the assistant's answer")
    return gemma_prompt(messages[:-1]), messages[-1]["content"] + END_OF_TURN


@dataclass
class Example:
    item_id: str
    ids: list[int]
    n_prompt: int  # ids[:n_prompt] is the prompt; the rest is the answer the loss is taken on


def tokenize(tokenizer: Any, items: list[EvalItem], evalset: EvalSet, system_role: bool,
             out: Out, prompt: PromptSpec | None = None) -> list[Example]:
    """Prompt and answer are tokenised apart, as at inference (the prompt is tokenised on its own and the
    answer is generated after it), with BOS on the prompt as llama.cpp adds it."""
    return tokenised_examples(
        tokenizer, items, lambda item: training_text(render_training_example(evalset, item, system_role=system_role,
                                                                             prompt=prompt)),
        MAX_SEQ_TOKENS, bos=True, out=out)


def tokenised_examples(tokenizer: Any, items: list[EvalItem], texts: Callable[[EvalItem], tuple[str, str]],
                       limit: int, *, bos: bool, out: Out) -> list[Example]:
    """Each item's (prompt, answer) texts tokenised apart, the prompt with the tokenizer's special tokens when
    `bos`; an example longer than `limit` tokens is left out and named."""
    examples: list[Example] = []
    too_long = []
    for item in items:
        text, answer = texts(item)
        p_ids = tokenizer(text, add_special_tokens=bos)["input_ids"]
        a_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if len(p_ids) + len(a_ids) > limit:
            too_long.append(item.id)
            continue
        examples.append(Example(item.id, p_ids + a_ids, len(p_ids)))
    if too_long:
        out(f"skipped     {len(too_long)} example(s) over {limit} tokens: {', '.join(too_long[:5])}")
    return examples


def shared_prefix_len(examples: list[Example]) -> int:
    """Tokens every example starts with, compared on token ids (so the split cannot change tokenisation),
    and short of every prompt's end so each answer's first token is predicted inside the per-example part."""
    if not examples:
        return 0
    first = examples[0].ids
    n = min(e.n_prompt for e in examples) - 1
    p = 0
    while p < n and all(e.ids[p] == first[p] for e in examples):
        p += 1
    return p


def step_count(n_examples: int, batch_size: int, epochs: float, max_steps: int | None) -> int:
    """`max_steps` when set (it wins over epochs, as in transformers' Trainer), else `local_epochs` worth."""
    if max_steps:
        return max_steps
    return max(1, math.ceil(epochs * n_examples / batch_size))


def batch_plan(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Example indices per step: reshuffled every epoch, seeded, the last short batch of an epoch kept."""
    rng = random.Random(seed)
    batches: list[list[int]] = []
    while len(batches) < steps:
        order = list(range(n))
        rng.shuffle(order)
        batches += [order[i:i + batch_size] for i in range(0, n, batch_size)]
    return batches[:steps]
