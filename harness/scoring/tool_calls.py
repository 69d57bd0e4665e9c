"""The core checks of an answer to a task with tools (task.yaml `tools:`): a tool call, or text.

- format valid: every call names a declared tool and its arguments are a JSON object that validates against
  that tool's `parameters`; a text answer (no call) is format-valid when it is not empty, as on a free-text task.
- correct: exactly the expected calls, each with exactly the expected arguments (values compared as JSON
  answers are, harness.scoring.scorers.values_equal), matched without regard to order when several are
  expected. An extra call, a missing one, a call where text was expected, or text where a call was expected is
  wrong. Where text is expected, a text answer is compared as on a free-text task.
- fields: per expected argument (`tool.argument`, harness.data.tool_spec.argument_keys), whether the call
  matched to that expected call passed it right, so the tables' per-field accuracy reads per argument.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from typing import Any

from harness.data.tool_spec import (
    argument_keys,
    call_label,
    expected_calls,
    parameter_schemas,
    parameter_validators,
)
from harness.records import ToolCall
from harness.scoring.scorers import Checks, text_scores, values_equal

# Above this many calls on either side, calls are matched greedily instead of over every assignment.
EXHAUSTIVE_MATCH_MAX = 6


@dataclass(frozen=True)
class GivenCall:
    name: str
    arguments: Any  # the parsed arguments, or None when they are not a JSON object
    valid: bool  # a declared tool, arguments that parse and validate against its parameters


class ToolCallScorer:
    """Scores one answer (its text and its calls) against the item's expected calls or text."""

    def __init__(self, tools: list[dict[str, Any]]):
        self.validators = parameter_validators(tools)
        self.schemas = parameter_schemas(tools)

    def given(self, call: ToolCall) -> GivenCall:
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else None
        except json.JSONDecodeError:
            args = None
        validator = self.validators.get(call.name)
        valid = validator is not None and isinstance(args, dict) and validator.is_valid(args)
        return GivenCall(call.name, args if isinstance(args, dict) else None, valid)

    def score(self, text: str, tool_calls: list[ToolCall] | None, expected: Any) -> tuple[Any, Checks]:
        """(the parsed answer, its checks). The parsed answer is the text, or the calls with their arguments
        parsed where they parse (as sent where they do not)."""
        wanted = expected_calls(expected)
        if not tool_calls:
            checks = text_scores(text, expected if wanted is None else None)
            if wanted is not None:  # text where a call was expected: every expected argument is missed
                checks = dataclasses.replace(checks, fields=dict.fromkeys(argument_keys(wanted), False))
            return text, checks
        given = [self.given(c) for c in tool_calls]
        parsed = [{"name": c.name, "arguments": g.arguments if g.arguments is not None else c.arguments}
                  for c, g in zip(tool_calls, given, strict=True)]
        valid = all(g.valid for g in given)
        if wanted is None:  # a call where text was expected
            return parsed, Checks(format_valid=valid, correct=False, correct_lenient=False)
        fields, all_right = self.match(given, wanted)
        correct = valid and all_right
        return parsed, Checks(format_valid=valid, correct=correct, correct_lenient=correct, fields=fields)

    # -- matching given calls to expected ones ------------------------------------------------------------------
    def argument_results(self, call: GivenCall | None, want: dict[str, Any]) -> dict[str, bool]:
        """Per expected argument of `want`, whether `call` passed it right."""
        args = want.get("arguments") or {}
        if call is None or call.name != want["name"] or call.arguments is None:
            return dict.fromkeys(args, False)
        props = (self.schemas.get(want["name"]) or {}).get("properties") or {}
        return {k: k in call.arguments and values_equal(call.arguments[k], v, props.get(k)) for k, v in args.items()}

    def call_right(self, call: GivenCall | None, want: dict[str, Any]) -> bool:
        results = self.argument_results(call, want)
        return (call is not None and call.name == want["name"] and call.arguments is not None
                and set(call.arguments) == set(want.get("arguments") or {}) and all(results.values()))

    def match(self, given: list[GivenCall], wanted: list[dict[str, Any]]) -> tuple[dict[str, bool], bool]:
        """(per-argument results, whether the calls are exactly the expected ones) under the pairing of given to
        expected calls that gets the most calls, then the most arguments, right."""
        def quality(pairing: tuple[int | None, ...]) -> tuple[int, int]:
            calls = [given[j] if j is not None else None for j in pairing]
            return (sum(self.call_right(c, w) for c, w in zip(calls, wanted, strict=True)),
                    sum(sum(self.argument_results(c, w).values()) for c, w in zip(calls, wanted, strict=True)))

        pairing = _best_pairing(len(given), len(wanted), quality)
        names = [w["name"] for w in wanted]
        fields: dict[str, bool] = {}
        right = 0
        for n, (j, want) in enumerate(zip(pairing, wanted, strict=True)):
            call = given[j] if j is not None else None
            label = call_label(names, n)
            fields.update({f"{label}.{k}": v for k, v in self.argument_results(call, want).items()})
            right += self.call_right(call, want)
        return fields, right == len(wanted) == len(given)


def _best_pairing(n_given: int, n_wanted: int, quality: Any) -> tuple[int | None, ...]:
    """For each expected call, the index of the given call paired with it (None: none left), best by `quality`."""
    if max(n_given, n_wanted) <= EXHAUSTIVE_MATCH_MAX:
        slots: list[int | None] = [*range(n_given), *([None] * max(0, n_wanted - n_given))]
        return max(dict.fromkeys(itertools.permutations(slots, n_wanted)), key=quality)
    pairing: list[int | None] = []
    free = list(range(n_given))
    for n in range(n_wanted):  # greedy: each expected call takes the free given call that serves it best
        options = free or [None]
        best = max(options, key=lambda j: quality((*pairing, j, *([None] * (n_wanted - n - 1)))))
        pairing.append(best)
        if best is not None:
            free.remove(best)
    return tuple(pairing)
