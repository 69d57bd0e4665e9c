import json

import yaml

from harness.cli import main
from harness.data.evalset import load_evalset
from harness.data.leakage import check_leakage
from tests.conftest import BANKING77

# The Banking77 sample in tests/data/banking77 (see its README.md): 180 test rows, 25 of which repeat a train row
# after normalising (as in the full dataset), and 795 train rows; every one of the 77 intents in both splits.


def _import_banking77(out, *train_args):
    assert main(["import", "csv", str(BANKING77 / "test.csv"), "--input-col", "text", "--label-col", "category",
                 "--label-field", "intent", "--out", str(out), "--split", "test"]) == 0
    assert main(["import", "csv", str(BANKING77 / "train.csv"), "--input-col", "text", "--label-col", "category",
                 "--label-field", "intent", "--out", str(out), "--split", "train", *train_args]) == 0
    return load_evalset(out)


def test_import_banking77_test_and_train(tmp_path, capsys):
    ev = _import_banking77(tmp_path / "evalsets" / "banking77", "--sample", "300")
    assert "wrote 300 items" in capsys.readouterr().out
    assert len(ev.test) == 180 and len(ev.train) == 300
    categories = json.loads((BANKING77 / "categories.json").read_text())
    assert len(categories) == 77
    assert sorted(ev.schema["properties"]["intent"]["enum"]) == sorted(categories)
    assert ev.label_fields["intent"] == ev.schema["properties"]["intent"]["enum"]
    first = ev.test[0]
    assert first.input == {"text": "How do I locate my card?"} and first.expected == {"intent": "card_arrival"}
    assert ev.render_input(first) == "How do I locate my card?"


def test_imported_banking77_leakage_finds_the_duplicates(tmp_path):
    """Banking77 repeats 25 test questions in train up to case, spacing and hyphens; the sample keeps them all."""
    ev = _import_banking77(tmp_path / "evalsets" / "banking77")
    assert len(ev.train) == 795
    exact = {f.test_id for f in check_leakage(ev) if f.other == "train" and f.kind == "exact"}
    assert len(exact) == 25
    texts = {i.id: i.input["text"] for i in ev.test}
    assert "Is there an auto top-up option?" in {texts[t] for t in exact}  # train has "auto top up"


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
