"""Items whose input is a conversation: a message list (`input: {messages: [...]}`, or the field task.yaml's
`messages_field` names) whose last turn is the user's, to be answered by the next assistant turn.

Every variant renders the turns as they are (harness.prompts.variants.render_prompt); what compares or embeds
an item's words (the leakage checks, similarity selection, retrieval, the fine-tuning export's held-out guard)
reads them through the texts below, so a conversation is never compared as the repr of a list of dicts.
"""

from __future__ import annotations

from typing import Any

DEFAULT_FIELD = "messages"
ROLES = ("user", "assistant")


def conversation_problem(value: Any) -> str | None:
    """Why `value` is not a usable conversation (one line, naming the turn), or None."""
    if not isinstance(value, list):
        return "must be a list of {role, content} turns"
    if not value:
        return "is empty; give at least one user turn"
    for n, turn in enumerate(value):
        if not isinstance(turn, dict):
            return f"[{n}] must be an object with role and content"
        extra = sorted(set(turn) - {"role", "content"})
        if extra:
            return f"[{n}] has unknown key(s) {', '.join(extra)}; a turn has only role and content"
        role = turn.get("role")
        if role not in ROLES:
            return (f"[{n}].role is {role!r}; use {' or '.join(ROLES)} (the task's instructions are the system "
                    f"turn)")
        if not isinstance(turn.get("content"), str) or not turn["content"].strip():
            return f"[{n}].content must be non-empty text"
    if value[-1]["role"] != "user":
        return f"[{len(value) - 1}] is an {value[-1]['role']} turn; the last turn must be the user's (the one to answer)"
    return None


def input_problem(item_input: dict[str, Any], template_keys: list[str] | None, messages_field: str) -> str | None:
    """Why an item's input cannot be rendered: a bad conversation, or a template field it lacks; None if it can."""
    if isinstance(item_input.get(messages_field), list):
        problem = conversation_problem(item_input[messages_field])
        if problem:
            return f"input.{messages_field}{'' if problem.startswith('[') else ' '}{problem}"
        return None
    if template_keys is None:
        return (f"input has no conversation under {messages_field!r} and task.yaml has no input_template; add "
                f"one of them")
    missing = [k for k in template_keys if k not in item_input]
    return f"input is missing {', '.join(missing)} used by task.yaml input_template" if missing else None


def turns_of(item_input: dict[str, Any], field: str = DEFAULT_FIELD) -> list[dict[str, str]] | None:
    """The item's turns (copies), or None when its input is not a conversation (no list under `field`)."""
    value = item_input.get(field)
    if not isinstance(value, list):
        return None
    return [{"role": str(t["role"]), "content": str(t["content"])} for t in value if isinstance(t, dict)]


def transcript(turns: list[dict[str, str]]) -> str:
    """The conversation as a reader sees it, one `role: content` block per turn (a judge's input, the view)."""
    return "\n".join(f"{t['role']}: {t['content']}" for t in turns)


def words_text(turns: list[dict[str, str]]) -> str:
    """Only what was said, turn after turn: the text leakage checks and the held-out guard compare (the role
    labels every conversation shares are not evidence that two items are the same)."""
    return "\n".join(t["content"] for t in turns)


def query_text(turns: list[dict[str, str]]) -> str:
    """What retrieval and similarity selection embed: the turn to answer first (an embedding model reads only
    its first few hundred tokens), then the history that gives it context."""
    last = turns[-1]["content"]
    history = words_text(turns[:-1])
    return f"{last}\n\n{history}" if history else last


def value_words(value: Any) -> str:
    """An input value's words: a conversation's contents, anything else as text."""
    if isinstance(value, list) and value and all(isinstance(t, dict) and "content" in t for t in value):
        return " ".join(str(t["content"]) for t in value)
    return str(value)
