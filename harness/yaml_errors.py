"""A pydantic error on a YAML file (a config, task.yaml, a price table) as one line: file, line, key, cause.

The first error shown is the one most likely to be the cause: an unknown key, often a misspelling, comes before
the "missing required key" it leaves behind, and says which key was probably meant.
"""

from __future__ import annotations

import difflib
import re
import types
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

# "variants[1].model: unknown model ..." from a validator on a whole section: the path says where the cause is.
_PATH_PREFIX = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*): (.+)$", re.DOTALL)
_PATH_PART = re.compile(r"([A-Za-z_]\w*)|\[(\d+)\]")


def _yaml_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Walk the YAML node tree along a pydantic error location to find its 1-based line."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(part):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
            if nxt is None:
                return line
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse_loc(path: str) -> tuple[Any, ...]:
    """The inverse of format_loc: "variants[1].model" -> ("variants", 1, "model")."""
    return tuple(int(m[2]) if m[2] else m[1] for m in _PATH_PART.finditer(path))


def _members(tp: Any) -> list[Any]:
    if get_origin(tp) in (Union, types.UnionType):
        return [a for a in get_args(tp) if a is not type(None)]
    return [tp]


def _walk(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[Any]]:
    """(the location without the union-member names pydantic puts in it, e.g. `headers.X.EnvRef.env` ->
    `headers.X.env`; the types that can sit there), following models, lists, dicts and unions."""
    tps: list[Any] = [model] if model is not None else []
    kept: list[Any] = []
    for part in loc:
        members = [m for t in tps for m in _members(t)]
        tagged = [m for m in members if isinstance(m, type) and m.__name__ == part] if len(members) > 1 else []
        if tagged:
            tps = tagged
            continue
        nxt: list[Any] = []
        for tp in members:
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if isinstance(part, str) and part in tp.model_fields:
                    nxt.append(tp.model_fields[part].annotation)
            elif get_origin(tp) in (list, tuple) and isinstance(part, int) and get_args(tp):
                nxt.append(get_args(tp)[0])
            elif get_origin(tp) is dict and isinstance(part, str) and len(get_args(tp)) == 2:
                nxt.append(get_args(tp)[1])
        kept.append(part)
        tps = nxt
    return tuple(kept), tps


def allowed_keys(model: type[BaseModel] | None, parent: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts in the mapping at `parent`."""
    keys: list[str] = []
    for tp in (m for t in _walk(model, parent)[1] for m in _members(t)):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            keys += [k for k in tp.model_fields if k not in keys]
    return keys


def meant_key(key: str, allowed: list[str]) -> str | None:
    """The allowed key an unknown key was probably meant to be (a misspelling), if one is close."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key_message(key: str, allowed: list[str]) -> str:
    meant = meant_key(key, allowed)
    if meant:
        return f"unknown key {key!r} (did you mean {meant!r}?)"
    if allowed:
        return f"unknown key {key!r} (allowed here: {', '.join(allowed)})"
    return f"unknown key {key!r} (check spelling; see README for the allowed keys)"


def _describe(err: dict[str, Any], model: type[BaseModel] | None) -> tuple[tuple[Any, ...], str, str | None]:
    """(where: the location of the mapping or key to point at, the message, the key an unknown key meant)."""
    loc, msg = _walk(model, tuple(err["loc"]))[0], err["msg"]
    if err["type"] == "extra_forbidden":
        allowed = allowed_keys(model, loc[:-1])
        return loc, unknown_key_message(str(loc[-1]), allowed), meant_key(str(loc[-1]), allowed)
    if err["type"] == "missing":
        return loc, f"missing required key {loc[-1]!r}", None
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    found = _PATH_PREFIX.match(msg) if err["type"] in ("value_error", "assertion_error") else None
    if found:  # a check on a whole section names the field it is about
        loc, msg = loc + parse_loc(found[1]), found[2]
    elif msg.startswith("Input should be"):
        msg = "should be" + msg.removeprefix("Input should be")  # "input: Input should be ..." says it twice
    return loc, msg, None


def validation_message(path: Any, exc: ValidationError, node: yaml.Node | None,
                       model: type[BaseModel] | None = None) -> str:
    """One line: `FILE:LINE: WHERE: what is wrong (+N more)`. `model` (the class validated) lets an unknown key
    say which key was meant."""
    described = [(_describe(err, model), err["type"]) for err in exc.errors()]
    # An unknown key first: a misspelt required key also reports that key missing, which is not the cause.
    described.sort(key=lambda d: d[1] != "extra_forbidden")
    (loc, msg, _), error_type = described[0]
    meant = {(d[0][0][:-1], d[0][2]) for d in described if d[1] == "extra_forbidden" and d[0][2]}
    others = [d for d in described[1:] if not (d[1] == "missing" and (d[0][0][:-1], d[0][0][-1]) in meant)]
    line = _yaml_line(node, loc) if node is not None else None
    where = f"{path}:{line}" if line else str(path)
    # The key an unknown or missing key message names is not repeated in front of it.
    field = loc[:-1] if error_type in ("extra_forbidden", "missing") else loc
    more = f" (+{len(others)} more)" if others else ""
    return f"{where}: {format_loc(field) + ': ' if field else ''}{msg}{more}"
