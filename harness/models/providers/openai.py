"""OpenAI's own API: api.openai.com, or where OPENAI_BASE_URL or the model's base_url points."""

from __future__ import annotations

from harness.models.providers.base import Provider
from harness.models.providers.registry import register


@register
class OpenAIProvider(Provider):
    name = "openai"
    default_api_key_env = "OPENAI_API_KEY"
    requires_api_key = True
    openai_token_counts = True

    def check(self) -> None:
        self.require_model()
