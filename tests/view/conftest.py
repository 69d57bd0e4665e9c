"""Run folders shared by the viewer's tests: made once per session (two real runs on the loopback server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.view.runs import build_runs


@pytest.fixture(scope="session")
def view_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(accepted run, candidate run)."""
    return build_runs(tmp_path_factory.mktemp("view-runs"))
