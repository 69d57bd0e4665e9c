"""`provider: python`: a function of the team's application answers each item.

    models:
      bot: {provider: python, function: "myapp.bot:answer"}   # importable from the config's folder or sys.path

The function (sync, run in a worker thread, or async) is called as `answer(messages, item)`: the rendered
messages (a list of {role, content}) and the item ({id, input, metadata}, never its expected answer). It returns
the answer text, or a dict {text, tool_calls?, usage?: {prompt_tokens, completion_tokens}, cost_usd?,
doc_ids?}. An exception it raises is an error record (its type and message, no traceback), retried only when it
is a TimeoutError or ConnectionError; a call that outlasts timeout_s is a timeout, retried.

Answers are cached like a model's, keyed on the function's name and the source of its module: editing that
file asks again; a change elsewhere (a prompt file, an index, a dependency) needs `--refresh` or `--no-cache`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.models.providers.app import (
    AppProvider,
    answer_text,
    bad,
    completion,
    cost_of,
    doc_ids_of,
    tool_calls_of,
    usage_of,
)
from harness.models.providers.base import CallFailed
from harness.models.providers.registry import register
from harness.records import Completion

_DICT_KEYS = ("text", "tool_calls", "usage", "cost_usd", "doc_ids")


class PythonApp:
    """The function, imported on first use (what ModelClient.client holds for this provider)."""

    def __init__(self, spec: str, import_path: list[Path], unused_http: Any = None):
        self.spec = spec
        self._unused_http = unused_http  # the HTTP client the harness prepared for SDK calls: only closed
        self.import_path = import_path
        self.base_url = f"python:{spec}"  # what identifies it in the cache (with the module's source)
        self._fn: Callable[..., Any] | None = None

    def load(self) -> Callable[..., Any]:
        if self._fn is None:
            module_name, _, attr = self.spec.partition(":")
            for folder in reversed(self.import_path):
                if str(folder) not in sys.path:
                    sys.path.insert(0, str(folder))
            module = importlib.import_module(module_name)
            fn = getattr(module, attr, None)
            if not callable(fn):
                raise AttributeError(f"module {module_name} has no function {attr}")
            self._fn = fn
        return self._fn

    def source_digest(self) -> str:
        try:
            module = sys.modules.get(self.spec.partition(":")[0]) or inspect.getmodule(self.load())
            source = Path(inspect.getfile(module)).read_bytes()  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - not importable: the probe says why; nothing to key on
            return ""
        return hashlib.sha256(source).hexdigest()[:16]

    async def close(self) -> None:
        if self._unused_http is not None:
            await self._unused_http.aclose()


@register
class PythonProvider(AppProvider):
    name = "python"
    own_keys = ("function", "import_path")
    called_how = "in this process"
    model_keys_hint = "`function`"
    refused_keys = (*AppProvider.refused_keys, "headers")

    def check(self) -> None:
        super().check()
        spec = getattr(self.cfg, "function", None)
        module, sep, attr = (spec or "").partition(":")
        if not (sep and module.strip() and attr.isidentifier()
                and all(p.isidentifier() for p in module.split("."))):
            raise ValueError('provider python needs function: "package.module:function" (e.g. "myapp.bot:answer")')

    def build_client(self, base_url: str | None, api_key: str | None, common: dict[str, Any]) -> Any:
        return PythonApp(self.cfg.function, list(getattr(self.cfg, "import_path", None) or []),  # type: ignore[attr-defined]
                         common.get("http_client"))

    def cache_scope(self) -> str:
        return f"|source={self._app().source_digest()}"

    def _app(self) -> PythonApp:
        if getattr(self, "_cached_app", None) is None:
            self._cached_app = self.build_client(None, None, {})
        return self._cached_app

    def unavailable(self) -> str | None:
        try:
            self._app().load()
        except Exception as exc:  # noqa: BLE001 - any import failure is the config's to fix
            return (f"cannot import {self.cfg.function}: {type(exc).__name__}: {exc} (the module is looked "  # type: ignore[attr-defined]
                    f"for in the config's folder, import_path and sys.path)")
        return None

    async def perform(self, client: PythonApp, body: dict[str, Any]) -> Completion:
        try:
            fn = client.load()
        except Exception as exc:  # noqa: BLE001
            raise CallFailed(f"cannot import {client.spec}: {type(exc).__name__}: {exc}", "client_error", False) from None
        # Copies: what the function does to its arguments never changes the recorded request.
        args = (copy.deepcopy(body["messages"]), copy.deepcopy(body.get("item")))
        try:
            async with asyncio.timeout(self.cfg.timeout_s):  # type: ignore[attr-defined]
                if inspect.iscoroutinefunction(fn):
                    result = await fn(*args)
                else:
                    result = await asyncio.to_thread(fn, *args)
                    if inspect.isawaitable(result):
                        result = await result
        except TimeoutError as exc:  # the function's own, or timeout_s passed (asyncio.timeout raises it)
            raise CallFailed(f"{type(exc).__name__}: {exc}" if str(exc) else
                             f"TimeoutError: no answer within timeout_s={self.cfg.timeout_s}",  # type: ignore[attr-defined]
                             "timeout", True) from None
        except ConnectionError as exc:
            raise CallFailed(f"{type(exc).__name__}: {exc}", "connection", True) from None
        except Exception as exc:  # noqa: BLE001 - the application's failure, recorded (no traceback)
            raise CallFailed(f"{type(exc).__name__}: {exc}", "client_error", False) from None
        return answer_of(result, client.spec)


def answer_of(result: Any, spec: str) -> Completion:
    """The function's return value -> a Completion; bad_response when it is neither text nor the dict."""
    if isinstance(result, str):
        return completion(result)
    if not isinstance(result, dict):
        raise bad(f"{spec} returned a {type(result).__name__}; return the answer text or a dict with text")
    unknown = [k for k in result if k not in _DICT_KEYS]
    if unknown:
        raise bad(f"{spec} returned unknown keys {', '.join(map(str, unknown))} (valid: {', '.join(_DICT_KEYS)})")
    calls = tool_calls_of(result.get("tool_calls"), "tool_calls")
    text = result.get("text")
    return completion("" if text is None and calls else answer_text(text, "text"),
                      usage=usage_of(result.get("usage"), "usage"), cost_usd=cost_of(result.get("cost_usd"), "cost_usd"),
                      doc_ids=doc_ids_of(result.get("doc_ids"), "doc_ids"), tool_calls=calls)
