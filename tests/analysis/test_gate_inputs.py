"""The gate's changed-item listing shows each item's input: a template's text, or a conversation's transcript."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from harness.analysis.gate_runs import GateRun, item_inputs
from harness.rundir.manifest import Manifest


def test_changed_items_show_conversations_as_transcripts(tmp_path: Path) -> None:
    folder = tmp_path / "evalset"
    folder.mkdir()
    (folder / "task.yaml").write_text(yaml.safe_dump({"instructions": "x", "input_template": "Q: {text}"}))
    items = [
        {"id": "a", "input": {"text": "where is my card"}, "expected": "x"},
        {"id": "b", "input": {"messages": [{"role": "user", "content": "hi, my card"},
                                           {"role": "assistant", "content": "when did you order it?"},
                                           {"role": "user", "content": "nine days ago"}]}, "expected": "x"},
    ]
    (folder / "test.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    manifest = Manifest.model_validate({"evalset": {"path": str(folder)}})
    run = GateRun(tmp_path, manifest, [], pd.DataFrame(), {})
    shown = item_inputs([run], {"a", "b"})
    assert shown["a"] == "Q: where is my card"
    assert "hi, my card" in shown["b"] and "when did you order it?" in shown["b"] and "nine days ago" in shown["b"]
    assert shown["b"].index("hi, my card") < shown["b"].index("nine days ago")
