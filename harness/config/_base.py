"""The config's shared pieces: the strict base model and the name rule."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _safe_name(value: str) -> str:
    """Run and variant names become folder and file names: no path separators, no leading dot."""
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}", value):
        raise ValueError(f"{value!r} is not a safe name: use up to 100 letters, digits, '-', '_' and '.', not "
                         "starting with '.' (it becomes part of folder and file names)")
    return value


SafeName = Annotated[str, AfterValidator(_safe_name)]
