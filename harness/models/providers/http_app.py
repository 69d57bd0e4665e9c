"""`provider: http`: the team's application behind an HTTP endpoint answers each item.

    models:
      bot:
        provider: http
        url: http://127.0.0.1:8080/answer
        headers: {Authorization: {env: BOT_TOKEN}}       # as for models: never stored in the run folder
        body: {question: "{{input.question}}", history: "{{messages}}", user: "{{metadata.user}}"}
        answer_path: data.answer                         # dotted; list indices as choices.0.text or choices[0].text
        usage_path: usage            # optional: {prompt_tokens, completion_tokens}
        cost_path: billing.usd       # optional: the call's cost in USD
        doc_ids_path: data.sources   # optional: the ids of the documents it retrieved (recall@k / MRR)
        tool_calls_path: data.calls  # optional: [{name, arguments}]

The body is POSTed as JSON. A string in the template that is exactly `{{NAME}}` is replaced by that value *as
JSON* (a list stays a list, a number a number; nothing is pasted into text, so no value can break the JSON):
`messages` (the rendered messages), `last_user_message` (the last user message's text), `id`, `input`,
`metadata`, and a dotted path into the last two (`input.question`). Any other use of `{{` is refused when the
config is loaded. Without `body`, the request itself is sent: {messages, item: {id, input, metadata}}.

5xx, 408, 429 (Retry-After honoured), timeouts and connection errors are retried like a model's; another 4xx
is a client_error record; a response without the answer path is a bad_response record naming the path and
the response's top-level keys (never its values).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from harness.models.providers.app import (
    _MISSING,
    AppProvider,
    answer_text,
    bad,
    completion,
    cost_of,
    doc_ids_of,
    lookup,
    path_parts,
    tool_calls_of,
    usage_of,
)
from harness.models.providers.base import CallFailed
from harness.models.providers.registry import register
from harness.records import Completion

_PLACEHOLDER = re.compile(r"^\{\{\s*([^{}\s]+)\s*\}\}$")
_ROOTS = ("messages", "last_user_message", "id", "input", "metadata")
PATH_KEYS = ("answer_path", "usage_path", "cost_path", "doc_ids_path", "tool_calls_path")


def placeholders(template: Any, where: str = "body") -> list[tuple[str, str]]:
    """(where, name) of every `{{NAME}}` in a body template; ValueError on one it cannot fill."""
    out: list[tuple[str, str]] = []
    if isinstance(template, dict):
        for k, v in template.items():
            out += placeholders(v, f"{where}.{k}")
    elif isinstance(template, list):
        for i, v in enumerate(template):
            out += placeholders(v, f"{where}[{i}]")
    elif isinstance(template, str) and ("{{" in template or "}}" in template):
        m = _PLACEHOLDER.match(template)
        if m is None:
            raise ValueError(f"{where}: {template!r}: a placeholder must be the whole value, e.g. "
                             f'"{{{{input.question}}}}" (it is filled as a JSON value, never pasted into text)')
        root, _, rest = m.group(1).partition(".")
        if root not in _ROOTS or (rest and root not in ("input", "metadata")):
            raise ValueError(f"{where}: unknown placeholder {m.group(1)!r} (valid: {', '.join(_ROOTS)}, "
                             f"input.FIELD, metadata.FIELD)")
        if rest:
            path_parts(rest)
        out.append((where, m.group(1)))
    return out


def _value(name: str, request: dict[str, Any]) -> Any:
    item = request.get("item") or {}
    messages = request.get("messages") or []
    if name == "messages":
        return messages
    if name == "last_user_message":
        return next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), None)
    root, _, rest = name.partition(".")
    value = lookup(item, [root, *path_parts(rest)]) if rest else item.get(root, _MISSING)
    if value is _MISSING:
        raise CallFailed(f"body: {{{{{name}}}}}: item {item.get('id')} has no {name}", "client_error", False)
    return value


def fill(template: Any, request: dict[str, Any]) -> Any:
    """The template with each placeholder replaced by its value (as JSON: see the module docstring)."""
    if isinstance(template, dict):
        return {k: fill(v, request) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, request) for v in template]
    if isinstance(template, str):
        m = _PLACEHOLDER.match(template)
        if m is not None:
            return _value(m.group(1), request)
    return template


class HttpApp:
    """What ModelClient.client holds for this provider: the URL, an httpx client whose response hook feeds the
    model's rate limiter (the hook of the SDK's client the harness prepared), the headers and the timeout."""

    def __init__(self, url: str, common: dict[str, Any]):
        import httpx

        self.url = url
        self.base_url = url
        self._sdk_http = common.get("http_client")  # not used for the calls; closed with this one
        hooks = getattr(self._sdk_http, "event_hooks", None) or {}
        self.http = httpx.AsyncClient(event_hooks={"response": list(hooks.get("response", []))},
                                      timeout=common.get("timeout"))
        self.headers = dict(common.get("default_headers") or {})

    async def close(self) -> None:
        await self.http.aclose()
        if self._sdk_http is not None:
            await self._sdk_http.aclose()


@register
class HttpProvider(AppProvider):
    name = "http"
    own_keys = ("url", "body", *PATH_KEYS)
    called_how = "at its url"
    model_keys_hint = "`url`"

    def check(self) -> None:
        super().check()
        cfg: Any = self.cfg
        parts = urlsplit(cfg.url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("provider http needs url: the endpoint to POST to (http:// or https://)")
        if not cfg.answer_path:
            raise ValueError("provider http needs answer_path: where the answer is in the response (e.g. data.answer)")
        for key in PATH_KEYS:
            if getattr(cfg, key):
                try:
                    path_parts(getattr(cfg, key))
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        if cfg.body is not None:
            placeholders(cfg.body)

    def build_client(self, base_url: str | None, api_key: str | None, common: dict[str, Any]) -> Any:
        return HttpApp(self.cfg.url, common)  # type: ignore[attr-defined]

    def cache_scope(self) -> str:
        # The paths decide what is kept of a response; the body template is in the cache key's body
        # (ModelClient.keyed_body, its secret-looking values left out, as for extra_body).
        cfg: Any = self.cfg
        return "".join(f"|{key}={getattr(cfg, key)}" for key in PATH_KEYS if getattr(cfg, key))

    async def perform(self, client: HttpApp, body: dict[str, Any]) -> Completion:
        import httpx

        cfg: Any = self.cfg
        payload = fill(cfg.body, body) if cfg.body is not None else body
        try:
            resp = await client.http.post(client.url, json=payload, headers=client.headers)
        except httpx.TimeoutException:
            raise CallFailed(f"timeout: no response within timeout_s={cfg.timeout_s}", "timeout", True) from None
        except httpx.TransportError as exc:
            raise CallFailed(f"{type(exc).__name__}: {exc}", "connection", True) from None
        status = resp.status_code
        if status >= 400:
            said = " ".join(resp.text.split())[:200]
            kind, retry = (("rate_limit", True) if status == 429 else ("server_error", True)
                           if status >= 500 or status == 408 else ("client_error", False))
            raise CallFailed(f"HTTP {status} from the application: {said}", kind, retry, status, resp)
        try:
            data = resp.json()
        except ValueError:
            raise bad(f"the response is not JSON (HTTP {status}, {resp.headers.get('content-type')})") from None
        return self.read(data)

    def read(self, data: Any) -> Completion:
        cfg: Any = self.cfg
        found = lookup(data, path_parts(cfg.answer_path))
        if found is _MISSING:
            keys = ", ".join(map(str, list(data)[:20])) if isinstance(data, dict) else f"a {type(data).__name__}"
            raise bad(f"answer_path {cfg.answer_path!r} is not in the response (its top-level keys: {keys or 'none'})")
        calls = self._optional(data, "tool_calls_path", tool_calls_of)
        return completion("" if found is None and calls else answer_text(found, f"answer_path {cfg.answer_path!r}"),
                          usage=self._optional(data, "usage_path", usage_of),
                          cost_usd=self._optional(data, "cost_path", cost_of),
                          doc_ids=self._optional(data, "doc_ids_path", doc_ids_of), tool_calls=calls)

    def _optional(self, data: Any, key: str, read: Any) -> Any:
        """An optional path's value (None: not configured, or not in this response: not reported)."""
        path = getattr(self.cfg, key)
        if not path:
            return None
        value = lookup(data, path_parts(path))
        return None if value is _MISSING else read(value, f"{key} {path!r}")
