"""task.yaml's `tools:` (OpenAI function schemas) and `tool_choice`, and the expected answers of a task with
tools: `{"tool_calls": [{"name": ..., "arguments": {...}}]}` where a call is right, or text where none is.

Checked when the eval set is loaded, so a misspelt tool name or an expected argument the tool's own schema
refuses is one line naming the file and line before the first call, not a run of wrong scores.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from harness.errors import EvalSetError

TOOL_CHOICES = ("auto", "none", "required")


def tools_problem(tools: Any) -> str | None:
    """Why task.yaml's `tools:` is unusable (naming the entry), or None."""
    if not isinstance(tools, list) or not tools:
        return "tools: must be a non-empty list of {type: function, function: {name, description, parameters}}"
    seen: set[str] = set()
    for n, tool in enumerate(tools):
        where = f"tools[{n}]"
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            return f"{where}: must be {{type: function, function: {{name, description, parameters}}}}"
        extra = sorted(set(tool) - {"type", "function"})
        if extra:
            return f"{where}: unknown key(s) {', '.join(extra)} (a tool has type and function)"
        fn = tool["function"]
        name = fn.get("name")
        if not isinstance(name, str) or not name.strip():
            return f"{where}.function.name: give the tool's name"
        if name in seen:
            return f"{where}.function.name: {name!r} is declared twice"
        seen.add(name)
        params = fn.get("parameters", {"type": "object", "properties": {}})
        try:
            jsonschema.validators.validator_for(params).check_schema(params)
        except jsonschema.SchemaError as exc:
            at = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            return f"{where}.function.parameters is not a valid JSON Schema at {at}: {exc.message}"
    return None


def tool_choice_problem(choice: Any, names: list[str]) -> str | None:
    """Why `tool_choice` is unusable, or None: auto, none, required, or {type: function, function: {name}}."""
    if choice is None or choice in TOOL_CHOICES:
        return None
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if name in names:
            return None
        return f"tool_choice names {name!r}, which is not a declared tool ({', '.join(names)})"
    return f"tool_choice: use {', '.join(TOOL_CHOICES)} or {{type: function, function: {{name: TOOL}}}}"


def tool_validators(task_path: Any, tools: Any, tool_choice: Any) -> dict[str, Any] | None:
    """The declared tools' argument validators (None: the task declares no tools); EvalSetError naming
    task.yaml when the tools or tool_choice are unusable."""
    if tools is None:
        if tool_choice is not None:
            raise EvalSetError(f"{task_path}: tool_choice is set but no tools are declared; add tools: or remove it")
        return None
    problem = tools_problem(tools) or tool_choice_problem(tool_choice, [t["function"]["name"] for t in tools])
    if problem:
        raise EvalSetError(f"{task_path}: {problem}")
    return parameter_validators(tools)


def parameter_validators(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Tool name -> a validator of its arguments (its `parameters` schema; no parameters: an empty object)."""
    out = {}
    for tool in tools:
        fn = tool["function"]
        params = fn.get("parameters", {"type": "object", "properties": {}})
        out[fn["name"]] = jsonschema.validators.validator_for(params)(params)
    return out


def parameter_schemas(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["function"]["name"]: t["function"].get("parameters") or {} for t in tools}


def expected_calls(expected: Any) -> list[dict[str, Any]] | None:
    """The calls an expected answer holds, or None when it is a text answer (no call is right)."""
    if isinstance(expected, dict) and set(expected) == {"tool_calls"} and isinstance(expected["tool_calls"], list):
        return expected["tool_calls"]
    return None


def expected_problem(expected: Any, validators: dict[str, Any]) -> str | None:
    """Why an item's expected answer does not fit a task with these tools, or None."""
    if isinstance(expected, str) or (isinstance(expected, list) and expected
                                     and all(isinstance(e, str) for e in expected)):
        return None
    calls = expected_calls(expected)
    if calls is None:
        return ('expected must be {"tool_calls": [{"name": ..., "arguments": {...}}]} or a text answer (task.yaml '
                'declares tools)')
    if not calls:
        return "expected tool_calls is empty; give a text answer where no call is right"
    for n, call in enumerate(calls):
        if not isinstance(call, dict) or set(call) - {"name", "arguments"} or "name" not in call:
            return f"expected tool_calls[{n}] must be {{name, arguments}}"
        validator = validators.get(call["name"])
        if validator is None:
            return f"expected tool_calls[{n}] calls {call['name']!r}, which task.yaml tools does not declare"
        args = call.get("arguments", {})
        if not isinstance(args, dict):
            return f"expected tool_calls[{n}].arguments must be a JSON object"
        error = jsonschema.exceptions.best_match(validator.iter_errors(args))
        if error is not None:
            at = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return f"expected tool_calls[{n}].arguments do not match {call['name']}'s parameters at {at}: {error.message}"
    return None


def argument_keys(calls: list[dict[str, Any]]) -> list[str]:
    """The per-argument field names of expected calls, as Record.fields keeps them: `tool.argument`, with the
    call's position (`tool#2.argument`) when a tool is expected more than once."""
    names = [c.get("name") for c in calls]
    out = []
    for n, call in enumerate(calls):
        label = call_label(names, n)
        out += [f"{label}.{arg}" for arg in (call.get("arguments") or {})]
    return out


def call_label(names: list[Any], n: int) -> str:
    name = str(names[n])
    if names.count(names[n]) == 1:
        return name
    return f"{name}#{names[:n + 1].count(names[n])}"
