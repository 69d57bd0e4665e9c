import json

import pytest
import yaml

from harness.cli import main
from harness.data.evalset import load_evalset
from tests.conftest import BANKING77

needs_banking77 = pytest.mark.skipif(not BANKING77.is_dir(), reason="../shared/datasets/banking77 not present")


@needs_banking77
def test_import_banking77_test_and_train(tmp_path, capsys):
    out = tmp_path / "evalsets" / "banking77"
    assert main(["import", "csv", str(BANKING77 / "test.csv"), "--input-col", "text", "--label-col", "category",
                 "--label-field", "intent", "--out", str(out), "--split", "test"]) == 0
    assert main(["import", "csv", str(BANKING77 / "train.csv"), "--input-col", "text", "--label-col", "category",
                 "--label-field", "intent", "--out", str(out), "--split", "train", "--sample", "500"]) == 0
    assert "wrote 500 items" in capsys.readouterr().out
    ev = load_evalset(out)
    assert len(ev.test) == 3080 and len(ev.train) == 500
    categories = json.loads((BANKING77 / "categories.json").read_text())
    assert sorted(ev.schema["properties"]["intent"]["enum"]) == sorted(categories)
    assert ev.label_fields["intent"] == ev.schema["properties"]["intent"]["enum"]
    first = ev.test[0]
    assert first.input == {"text": "How do I locate my card?"} and first.expected == {"intent": "card_arrival"}
    assert ev.render_input(first) == "How do I locate my card?"


def test_import_jsonl_and_enum_union(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_text('{"q": "hi", "lab": "greet"}\n{"q": "bye", "lab": "leave"}\n')
    src2 = tmp_path / "b.jsonl"
    src2.write_text('{"q": "yo", "lab": "slang"}\n')
    out = tmp_path / "es"
    assert main(["import", "jsonl", str(src), "--input-col", "q", "--label-col", "lab", "--out", str(out)]) == 0
    assert main(["import", "jsonl", str(src2), "--input-col", "q", "--label-col", "lab", "--out", str(out),
                 "--split", "train"]) == 0
    task = yaml.safe_load((out / "task.yaml").read_text())
    assert task["output_schema"]["properties"]["lab"]["enum"] == ["greet", "leave", "slang"]
    assert load_evalset(out).train[0].expected == {"lab": "slang"}


def test_import_errors(tmp_path, capsys):
    src = tmp_path / "a.csv"
    src.write_text("text,category\nhello,x\n")
    code = main(["import", "csv", str(src), "--input-col", "body", "--label-col", "category", "--out",
                 str(tmp_path / "o")])
    assert code == 2 and "no column(s) body" in capsys.readouterr().err
    assert main(["import", "csv", str(src), "--input-col", "text", "--label-col", "category", "--out",
                 str(tmp_path / "o")]) == 0
    code = main(["import", "csv", str(src), "--input-col", "text", "--label-col", "category", "--out",
                 str(tmp_path / "o")])
    assert code == 2 and "--force" in capsys.readouterr().err
