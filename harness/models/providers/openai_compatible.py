"""Any server that speaks OpenAI's chat completions at a base_url: vLLM, Ollama, a gateway, Anthropic's and
Google's OpenAI-compatible endpoints. A key is sent only when the model names its variable (api_key_env)."""

from __future__ import annotations

from harness.models.providers.base import Provider
from harness.models.providers.registry import register


@register
class OpenAICompatibleProvider(Provider):
    name = "openai-compatible"

    def check(self) -> None:
        if not self.cfg.base_url:
            raise ValueError("provider openai-compatible needs base_url (e.g. http://127.0.0.1:8000/v1)")
        self.require_model()
