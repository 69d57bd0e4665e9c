"""Credentials kept out of everything a run writes: config.json, the manifest, error messages and cache keys.

What counts as a credential in a model's config: its `headers` values (literal ones; `{env: NAME}` keeps only
the name), the user:password and key-like query parameters (`?key=`, `?api-key=`, `?token=`, `?code=`, ...) of
its `base_url` / `azure_endpoint` / `url`, and the `extra_body` (and an http application's `body`) values under a key that looks like a secret (key, token,
secret, password, auth, ...). The real values are still sent on every call; they are replaced by REDACTED
markers in what is stored, and a resumed run takes them back from the original config file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from harness.config import REDACTED
from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.config import ModelConfig, RunConfig

URL_REDACTED = "REDACTED"  # in a URL: no spaces or brackets, so the URL stays one readable token
_SECRET_WORDS = {"key", "apikey", "token", "secret", "secrets", "password", "passwd", "pwd", "passphrase", "auth",
                 "authorization", "credential", "credentials", "signature", "sig", "bearer", "cookie", "session"}
_URL_SECRET_WORDS = _SECRET_WORDS | {"code"}  # Azure Functions and similar take the key as ?code=
_NOT_SECRET = {"prompt_cache_key"}  # an OpenAI request field that routes prompt caching, not a credential


def secret_key(name: str, words: set[str] = _SECRET_WORDS) -> bool:
    """Whether a field name looks like it holds a credential: api_key, apiKey, x-api-key, access_token,
    client_secret, password, auth... (max_tokens does not: `tokens` is a count)."""
    if name in _NOT_SECRET:
        return False
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    parts = {p for p in re.split(r"[^a-z0-9]+", spaced) if p}
    return bool(parts & words) or spaced.replace("-", "_") in ("api_key", "x_api_key")


def _url_parts(url: str) -> tuple[str, list[str]] | None:
    """(the URL with its credentials replaced, the credential values), or None when it holds none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    found: list[str] = []
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        found += [unquote(x) for x in userinfo.split(":", 1) if x]
        netloc = f"{URL_REDACTED}@{host}"
    pairs = []
    for piece in parts.query.split("&") if parts.query else []:
        name, sep, value = piece.partition("=")
        if sep and value and secret_key(unquote(name), _URL_SECRET_WORDS):
            found.append(unquote(value))
            piece = f"{name}={URL_REDACTED}"
        pairs.append(piece)
    if not found:
        return None
    return urlunsplit(parts._replace(netloc=netloc, query="&".join(pairs))), found


def redact_url(url: str | None) -> str | None:
    """The URL with user:password and key-like query values replaced; unchanged (the very string) without them."""
    if not url:
        return url
    found = _url_parts(url)
    return url if found is None else found[0]


def redact_body(body: dict[str, Any]) -> dict[str, Any]:
    """`extra_body` (or any JSON object) with the values under secret-looking keys replaced, at any depth."""
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: REDACTED if secret_key(str(k)) else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value
    return walk(body)


def secret_values(m: ModelConfig) -> list[str]:
    """The credential values in a model's URL and extra_body, for scrubbing error messages."""
    out: list[str] = []
    for url in (m.base_url, m.azure_endpoint, m.url):
        found = _url_parts(url) if url else None
        out += found[1] if found else []

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, secret or secret_key(str(k)))
        elif isinstance(value, list):
            for v in value:
                walk(v, secret)
        elif secret and value is not None and not isinstance(value, bool):
            out.append(str(value))
    walk(m.extra_body, False)
    walk(m.body or {}, False)  # an http application's body template (provider: http)
    return [s for s in out if len(s) >= 4]  # scrubbing "1" or "ok" would mangle every message


def snapshot(cfg: RunConfig) -> dict[str, Any]:
    """The resolved config as saved in a run folder (config.json). Holds env var *names*, never their values;
    literal header values, URL credentials and secret-looking extra_body values are replaced."""
    data = cfg.model_dump(mode="json")
    for m in data.get("models", {}).values():
        for name, value in (m.get("headers") or {}).items():
            if isinstance(value, str):
                m["headers"][name] = REDACTED
        for key in ("base_url", "azure_endpoint", "url"):
            m[key] = redact_url(m.get(key))
        m["extra_body"] = redact_body(m.get("extra_body") or {})
        if m.get("body") is not None:
            m["body"] = redact_body(m["body"])
    return data


def _has_marker(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_marker(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_marker(v) for v in value)
    if isinstance(value, str):
        return value == REDACTED or f"{URL_REDACTED}@" in value or f"={URL_REDACTED}" in value
    return False


def redacted_fields(m: ModelConfig) -> list[str]:
    """The fields of a model read back from config.json whose values were not stored."""
    fields = [f"headers.{h}" for h, v in m.headers.items() if v == REDACTED]
    fields += [k for k in ("base_url", "azure_endpoint", "url") if _has_marker(getattr(m, k))]
    return fields + [k for k in ("extra_body", "body") if _has_marker(getattr(m, k))]


def _original_value(src: ModelConfig | None, field: str, stored: ModelConfig) -> Any:
    """The value of `field` in the original config file, if it is the one the run used."""
    if src is None:
        return None
    if field.startswith("headers."):
        value = src.headers.get(field.removeprefix("headers."))
        return None if value == REDACTED else value
    value = getattr(src, field)
    redact = redact_body if field in ("extra_body", "body") else redact_url
    return value if value and redact(value) == getattr(stored, field) else None


def restore_secrets(cfg: RunConfig, original: RunConfig | None) -> None:
    """On resume: the values config.json does not hold are taken from the original config file."""
    for name, m in cfg.models.items():
        src = original.models.get(name) if original is not None else None
        for field in redacted_fields(m):
            value = _original_value(src, field, m)
            if value is None:
                raise ConfigError(f"models.{name}.{field}: its value is not stored in the run folder and the "
                                  "original config no longer has it; resume from the config file instead")
            if field.startswith("headers."):
                m.headers[field.removeprefix("headers.")] = value
            else:
                setattr(m, field, value)
