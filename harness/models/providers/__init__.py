"""The providers a model is called through, registered by name (see base.Provider and registry).

Adding a provider: a module here with a `Provider` subclass decorated with `@register`, and its import below.
"""

from harness.models.providers import (  # noqa: F401  (they register)
    azure,
    http_app,
    local,
    openai,
    openai_compatible,
    python_app,
)
from harness.models.providers.base import ModelSettings, Provider
from harness.models.providers.registry import (
    check_settings,
    find_provider,
    provider_class,
    provider_for,
    provider_names,
    register,
)

__all__ = ["ModelSettings", "Provider", "check_settings", "find_provider", "provider_class", "provider_for",
           "provider_names", "register"]
