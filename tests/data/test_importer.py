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


def _import(src, out, *extra):
    kind = "jsonl" if src.suffix == ".jsonl" else "csv"
    return main(["import", kind, str(src), "--input-col", "text", "--label-col", "category", "--out", str(out),
                 *extra])


def test_a_bad_row_writes_nothing_and_the_fixed_file_imports_without_force(tmp_path, capsys):
    src, out = tmp_path / "a.csv", tmp_path / "es"
    src.write_text("text,category\nhello,greet\nbye,\nhi there,greet\n,leave\n")
    assert _import(src, out) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {src}: row 3: empty category; row 5: empty input text (text); nothing was written: "
                   "fix the rows or leave them out of the file")
    assert not out.exists()
    src.write_text("text,category\nhello,greet\nbye,leave\n")
    assert _import(src, out) == 0  # no --force needed: the failed import left nothing behind
    assert [i.id for i in load_evalset(out).test] == ["test-00001", "test-00002"]


def test_a_bad_row_leaves_an_existing_eval_set_as_it_was(tmp_path, capsys):
    src, out = tmp_path / "a.csv", tmp_path / "es"
    src.write_text("text,category\nhello,greet\n")
    assert _import(src, out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    src.write_text("text,category\nbye,leave\n   ,leave\n")
    assert _import(src, out, "--force") == 2
    assert "row 3: empty input text" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no new label in task.yaml, no temp files


def test_jsonl_rows_are_named_by_line_and_a_missing_value_is_empty(tmp_path, capsys):
    src, out = tmp_path / "a.jsonl", tmp_path / "es"
    src.write_text('{"text": "hello", "category": "greet"}\n\n{"category": "greet"}\n')
    assert _import(src, out) == 2
    assert "line 3: empty input text (text)" in capsys.readouterr().err  # not the text "nan"
    assert not out.exists()


def test_repeated_texts_are_warned_with_their_rows(tmp_path, capsys):
    src, out = tmp_path / "test.csv", tmp_path / "es"
    src.write_text('text,category\nWhere is my card?,card\nrefund please,refund\nwhere is my  card,card\n'
                   '"Refund, please!",refund\nnew text,card\n')
    assert _import(src, out) == 0
    err = capsys.readouterr().err
    assert "warning: 2 text(s) appear more than once in this file (rows 2 = 4, 3 = 5)" in err
    train = tmp_path / "train.csv"
    train.write_text("text,category\nsomething else,card\nNEW TEXT,card\n")
    assert _import(train, out, "--split", "train") == 0
    assert "warning: 1 row(s) repeat an item of test.jsonl (row 3 ~ test-00005)" in capsys.readouterr().err
    assert len(load_evalset(out).test) == 5  # warnings, not errors: every row is imported


def test_validate_names_empty_and_repeated_items(tmp_path, evalset_dir, capsys):
    from tests.conftest import make_config

    with (evalset_dir / "test.jsonl").open("a") as fh:
        for item_id, text in (("t5", "Where is my NEW card?"), ("t6", "  "), ("t7", "where is my new card")):
            fh.write(json.dumps({"id": item_id, "input": {"text": text},
                                 "expected": {"intent": "card_arrival", "urgent": False}}) + "\n")
    assert main(["validate", str(make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1"))]) == 0
    out = capsys.readouterr().out
    assert "warning: test.jsonl: 1 item(s) with empty input text (t6): fill them in or remove them" in out
    assert "warning: test.jsonl: 1 text(s) repeated in the split (t1 = t5 = t7)" in out
