"""What an OpenAI-style model id says by itself: the base a fine-tune was made from, and whether the model
is a reasoning model (one that takes max_completion_tokens and refuses temperature and seed)."""

from __future__ import annotations

import re

# Models that take max_completion_tokens, refuse temperature (other than the default) and count hidden
# reasoning tokens. A model's `reasoning: true|false` overrides this list.
REASONING_MODELS = re.compile(r"^(o\d|codex-mini|gpt-5(?!.*-chat))")


def fine_tuned_base(model_id: str) -> str | None:
    """`ft:<base>:<org>[:<suffix>]:<id>` -> `<base>`."""
    if not model_id.startswith("ft:"):
        return None
    return model_id[3:].split(":", 1)[0] or None


def is_reasoning_model(model_id: str) -> bool:
    """o1, o3, o3-mini, o4-mini, the GPT-5 family (not its -chat variants), and fine-tunes of them; a
    gateway's `vendor/model` id is judged by its last part."""
    name = (fine_tuned_base(model_id) or model_id).rsplit("/", 1)[-1].lower()
    return bool(REASONING_MODELS.match(name))
