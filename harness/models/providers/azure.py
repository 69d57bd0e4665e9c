"""Azure OpenAI: a deployment on a resource endpoint, called with an API version and the key in the api-key
header. The deployment name is what the request's model field carries; its price is the row price_as names."""

from __future__ import annotations

from typing import Any

from harness.models.providers.base import Provider
from harness.models.providers.registry import register


@register
class AzureProvider(Provider):
    name = "azure"
    own_keys = ("azure_endpoint", "deployment", "api_version")
    default_api_key_env = "AZURE_OPENAI_API_KEY"
    requires_api_key = True
    # /models lists base models there, not deployments: reaching it is all that can be checked.
    lists_served_models = False
    model_keys_hint = "`deployment` and `endpoint`"
    unpriced_hint = "set price_as to the price-table row of the deployed model"

    def check(self) -> None:
        cfg = self.cfg
        if cfg.base_url and cfg.azure_endpoint:
            raise ValueError("provider azure: give the resource endpoint once, as base_url or azure_endpoint")
        if not (cfg.base_url or cfg.azure_endpoint):
            raise ValueError("provider azure needs base_url (or azure_endpoint), e.g. "
                             "https://my-resource.openai.azure.com")
        if not cfg.deployment:
            raise ValueError("provider azure needs deployment (the deployment name; it is sent as the model)")
        if not cfg.api_version:
            raise ValueError('provider azure needs api_version, e.g. "2024-10-21"')
        if cfg.model or cfg.model_file:
            raise ValueError("provider azure calls a deployment: set deployment (and price_as for its price), "
                             "not model / model_file")

    def model_id(self, name: str) -> str:
        return self.cfg.deployment or name  # Azure routes on the deployment, and the request's model field names it

    def cache_scope(self) -> str:
        return f"|api-version={self.cfg.api_version}"

    def build_client(self, base_url: str | None, api_key: str | None, common: dict[str, Any]) -> Any:
        import openai

        # /openai/deployments/{deployment}/chat/completions?api-version=..., key in the api-key header
        return openai.AsyncAzureOpenAI(azure_endpoint=self.cfg.endpoint, azure_deployment=self.cfg.deployment,
                                       api_version=self.cfg.api_version, api_key=api_key or "not-set", **common)
