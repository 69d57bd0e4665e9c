"""The embedded model: a GGUF (Gemma 3 270M by default, optionally with a LoRA adapter) served by
llama-cpp-python's server, which the harness starts before the first call and stops after the run
(harness.models.local). Free unless the model sets price_per_hour; trained by `harness finetune local`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.models.providers.base import HarnessServed
from harness.models.providers.registry import register


@register
class LocalProvider(HarnessServed):
    name = "local"
    own_keys = ("gguf", "lora")
    # llama-cpp-python's server rejects json_schema (HTTP 500) but accepts json_object + schema.
    default_structured_output = "json_object"
    keeps_system_role = False  # the gemma chat format silently drops system messages
    self_hosted = True
    serves_batch_api = False
    serves_tools = False  # the embedded gemma chat format has no tool calls: it would only ever answer in text
    fine_tune_with = "local"

    def key_problem(self, name: str, environ: Mapping[str, str]) -> str | None:
        return None  # the embedded server takes any key

    def server_spec(self, model_id: str) -> Any:
        from harness.models import local

        return local.LocalModelSpec(alias=model_id, gguf=self.cfg.gguf or local.ensure_gguf(), lora=self.cfg.lora)

    @classmethod
    def start_server(cls, specs: list[Any], run_dir: Path) -> Any:
        from harness.models import local

        server = local.LocalServer(specs, log_path=run_dir / "local-server.log")
        server.start()
        return server

    def server_identity(self, spec: Any) -> str:
        # keyed by the files, the llama-cpp-python release and the server settings (a retrained adapter is a
        # new model), not by the port
        return "local|" + spec.cache_identity()
