"""What `harness view` reads from run folders and serves: every item in full, the compact rows, the gate, the
self-contained file, the server's answers. The page itself is driven in a real browser in test_browser.py."""

from __future__ import annotations

import base64
import gzip
import json
import re
import urllib.error
import urllib.request

import pytest

from harness.analysis.compare import compare_runs
from harness.cli import main
from harness.errors import HarnessError
from harness.records import Record, Usage
from harness.view.data import ERROR, INVALID, ISSUE, UNKNOWN
from harness.view.model import ViewModel
from harness.view.server import ViewServer
from tests.conftest import write_jsonl
from tests.fakes.openai_server import Reply
from tests.view.runs import EXPECTED, GATE_ITEMS, HOSTILE, HOSTILE_INPUT


@pytest.fixture(scope="module")
def model(view_runs) -> ViewModel:
    accepted, candidate = view_runs
    return ViewModel(candidate, accepted)


def col(m: ViewModel, key: str) -> int:
    return [c.key for c in m.columns].index(key)


def test_every_item_in_full(model):
    assert model.ids == [f"q{i:03d}" for i in range(30)]  # the eval set's order, not the order calls finished
    d = model.item(model.index["q005"])
    assert d["input"] == {"text": "message number 5 please"} and d["input_source"] == "evalset"
    assert d["expected"] == {"intent": "refund", "urgent": False} and d["metadata"] == {"channel": "chat"}
    rag = d["cols"][col(model, "0:rag")][0]
    sent = rag["messages"]
    assert sent[0]["part"] == "instructions" and sent[0]["content"].startswith("Classify the customer's message.")
    assert sent[-1]["part"] == "input" and sent[-1]["content"] == "Message: message number 5 please"
    chunks = sent[-1]["chunks"]
    assert [c["rank"] for c in chunks] == [1, 2] and chunks[0]["doc_id"] == rag["retrieved_doc_ids"][0]
    assert chunks[0]["text"] in {"Cards are delivered within 5 working days. Tracking is in the app.",
                                 "If a card is lost or stolen, freeze it in the app immediately and order a new one.",
                                 "Refunds for merchant purchases go through the merchant; disputed charges take 10 days."}
    fs = d["cols"][col(model, "0:fs")][0]
    examples = [m for m in fs["messages"] if m["part"] == "example"]
    assert len(examples) == 4 and len(fs["shot_ids"]) == 2
    assert examples[0]["label"] == f"few-shot example 1 ({fs['shot_ids'][0]}): question"
    assert examples[3]["label"] == f"few-shot example 2 ({fs['shot_ids'][1]}): answer"
    # the hostile answer is kept verbatim (the page escapes it), not valid, wrong, with its scores
    assert fs["raw"] == HOSTILE and fs["format_valid"] is False and fs["primary"] == 0.0
    assert {"name": "format_valid", "value": False, "explanation": ""} in fs["scores"]
    assert fs["cost"] > 0 and fs["latency"] > 0 and fs["attempts"] == 1 and fs["cache_hit"] is False
    assert fs["settings"]["model"] == "gpt-4o" and fs["usage"]["prompt_tokens"] == 100
    old_fs = d["cols"][col(model, "1:fs")][0]
    assert old_fs["raw"] == '{"intent": "refund", "urgent": false}' and old_fs["primary"] == 1.0
    err = model.item(model.index["q011"])["cols"][col(model, "0:ft")][0]
    assert err["error_kind"] == "server_error" and err["raw"] is None and err["format_valid"] is None


def test_rows_flags_and_scores(model):
    rows = model.rows()
    assert rows["ids"] == model.ids
    cols = {c["key"]: c for c in rows["columns"]}
    assert set(cols) == {f"{r}:{v}" for r in (0, 1) for v in ("baseline", "fs", "rag", "ft")}
    ft = cols["0:ft"]
    assert [model.ids[i] for i, s in enumerate(ft["score"]) if s == 0.0] == GATE_ITEMS
    assert ft["flags"][model.index["q011"]] & ERROR and not cols["1:ft"]["flags"][model.index["q011"]] & ERROR
    assert cols["0:fs"]["flags"][model.index["q005"]] & INVALID
    assert cols["0:fs"]["cost"][29] > cols["0:fs"]["cost"][28]  # the few-shot prompt grows with the item
    facets = {f["name"]: f for f in rows["facets"]}
    channel = facets["metadata.channel"]
    assert sorted(channel["values"]) == ["chat", "email"] and channel["idx"].count(channel["values"].index("chat")) == 15
    assert "expected.intent" in facets and "answer of fs.intent" in facets
    assert "input.text" not in facets  # a different value per item is no filter


def test_gate_verdict_rule_and_failing_items(model, view_runs):
    accepted, candidate = view_runs
    gate = model.gate
    assert gate["failed"] is True and gate["verdict"].startswith("FAIL (accuracy-drop in variant ft")
    assert "McNemar" in gate["rule"] and "unanswered items count as wrong" in gate["rule"]
    failed = {m["metric"] for m in gate["metrics"] if m["failed"]}
    assert failed == {"accuracy", "format_valid", "error_rate"}
    assert [model.ids[i] for i in gate["items"]] == GATE_ITEMS
    # the same items `harness compare` lists as right -> wrong
    direct = compare_runs(accepted, candidate)
    assert {ch.item_id for c in direct.comparisons for ch in c.right_to_wrong} == set(GATE_ITEMS)
    assert EXPECTED["gate"] == len(GATE_ITEMS)


def test_search_over_inputs_and_answers(model):
    assert [model.ids[i] for i in model.search("number 19")] == ["q019"]  # every word, anywhere
    assert [model.ids[i] for i in model.search("pwned")] == ["q005", "q009"]  # an answer, an input
    assert model.search("PLEASE message") == list(range(30)) and model.search("") == list(range(30))
    assert model.search("no such words here") == []


def test_judge_verdict_reasoning_and_unknown_scores(tmp_path):
    from tests.scoring.test_judge import Server, do_run, judged_config, judged_set

    server = Server({"Paris.": 5, "It is Munich!": Reply(status=500),
                     "tokyo": Reply(text="Looks fine to me.", prompt_tokens=1000, completion_tokens=500)})
    with server.fake:
        res = do_run(judged_config(tmp_path, judged_set(tmp_path), server.fake.base_url), tmp_path, "r")
    m = ViewModel(res.run_dir)
    fr = m.item(m.index["fr"])["cols"][0][0]
    judge = next(j for j in fr["judges"] if j["name"] == "voice")
    assert judge["reasoning"] == "graded 5" and judge["score_raw"] == 5 and judge["judge_model"] == "grader"
    assert judge["prompt"][-1]["content"].endswith("## Answer to grade\n<answer>\nParis.\n</answer>")
    assert fr["eval_cost"] > 0
    de = m.item(m.index["de"])["cols"][0][0]
    voice = next(s for s in de["scores"] if s["name"] == "voice")
    assert voice["value"] is None and voice["explanation"].startswith("judge failed: server_error")
    flags = m.rows()["columns"][0]["flags"]
    assert sorted(m.ids[i] for i, f in enumerate(flags) if f & UNKNOWN) == ["de", "jp"]


def _record(item_id: str, answer: str, **kw) -> str:
    rec = Record(item_id=item_id, variant="v", model="m", model_id="x", expected="yes", raw_text=answer,
                 request={"messages": [{"role": "system", "content": "Answer."},
                                       {"role": "user", "content": f"question {item_id}"}]},
                 usage=Usage(prompt_tokens=3, completion_tokens=1, total_tokens=4), latency_s=0.5,
                 scores={"format_valid": True, "primary": 1.0 if answer == "yes" else 0.0}, **kw)
    return rec.model_dump_json() + "\n"


def test_retried_record_wins_damaged_lines_lose_only_themselves(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "r", "status": "completed",
                                                   "evalset": {"path": str(tmp_path / "gone")}}))
    lines = [_record("a", "no", error="boom", error_kind="timeout"),
             _record("b", "yes", answer_issue="truncated: the answer reached max_tokens"), '{"item_id": "c", "garb\n',
             _record("a", "yes"), _record("d", "yes")[:40]]
    (run / "records.jsonl").write_text("".join(lines))
    m = ViewModel(run)
    assert m.ids == ["a", "b"]  # c is garbled, d is torn (no newline, not whole): each loses its line only
    cells = m.rows()["columns"][0]
    assert cells["score"] == [1.0, 1.0] and cells["flags"][0] & ERROR == 0  # the retried answer replaced the error
    a = m.item(0)
    assert a["cols"][0][0]["raw"] == "yes" and a["input"] == "question a" and a["input_source"] == "request"
    assert "not on this machine" in m.runs[0].input_note
    assert cells["flags"][1] & ISSUE and m.item(1)["cols"][0][0]["issue"].startswith("truncated")


def test_conversation_input_shown_as_turns(tmp_path):
    ev = tmp_path / "ev"
    ev.mkdir()
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello, how can I help?"},
             {"role": "user", "content": "where is my card"}]
    write_jsonl(ev / "test.jsonl", [{"id": "a", "input": {"conversation": turns}, "expected": "yes"}])
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "r", "status": "completed", "evalset": {"path": str(ev)}}))
    (run / "records.jsonl").write_text(_record("a", "yes"))
    d = ViewModel(run).item(0)
    assert d["turns"] == turns and d["input_source"] == "evalset"


def _unpack(page: str, block_id: str) -> list[str]:
    """The lines of every chunk of a packed block of an --out file."""
    text = re.search(f'<script type="application/json" id="{block_id}">(.*?)</script>', page, re.S).group(1)
    return [line for chunk in json.loads(text) for line in gzip.decompress(base64.b64decode(chunk)).decode().split("\n")]


def test_out_file_is_self_contained_compact_and_escaped(view_runs, tmp_path, capsys):
    accepted, candidate = view_runs
    out = tmp_path / "share" / "view.html"
    assert main(["view", str(candidate), str(accepted), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    page = out.read_text()
    assert "Content-Security-Policy" in page and "connect-src 'none'" in page
    assert not re.search(r"https?://|//cdn|@import|url\(|<link|<img|<iframe", page, re.I)
    assert HOSTILE not in page and HOSTILE_INPUT not in page and "<script>window" not in page
    assert len(re.findall(r"<script", page)) == 7  # six data blocks and the page's own script
    items = [json.loads(line) for line in _unpack(page, "data-items")]
    assert [d["id"] for d in items] == [f"q{i:03d}" for i in range(30)]
    strings = json.loads(_unpack(page, "data-strings")[0])
    fs = items[5]["cols"][1][0]
    assert strings[fs["raw"]] == HOSTILE  # a long text: stored once, referred to by number
    assert items[5]["cols"][1][0]["parsed"] is None and items[1]["cols"][1][0]["raw"].startswith('{"intent"')
    instructions = fs["messages"][0]["content"]
    assert isinstance(instructions, int) and strings[instructions].startswith("Classify the customer's message.")
    assert sum(1 for d in items for c in d["cols"] if c for r in c
               if r["messages"][0]["content"] == instructions) == 30 * 8  # stored once, used by every record
    assert len(_unpack(page, "data-search")) == 30 and "pwned" in _unpack(page, "data-search")[5]


def test_report_names_the_view_command(view_runs):
    page = (view_runs[1] / "report.html").read_text()
    assert "<code>harness view</code> on this run folder shows every item" in page


def test_gate_that_cannot_run_says_why_and_items_still_pair(tmp_path):
    runs = []
    for name, answer, digest in (("old", "yes", "aaa"), ("new", "no", "bbb")):
        run = tmp_path / name
        run.mkdir()
        (run / "manifest.json").write_text(json.dumps({"run_id": name, "status": "completed",
                                                       "evalset": {"content_hash": digest}}))
        (run / "records.jsonl").write_text(_record("a", answer) + _record("b", "yes"))
        runs.append(run)
    m = ViewModel(runs[1], runs[0])
    assert m.gate["ran"] is False and m.gate["verdict"].startswith("the gate did not run: eval sets differ")
    assert m.gate["items"] == [] and m.ids == ["a", "b"]
    cols = {c["key"]: c["score"] for c in m.rows()["columns"]}
    assert cols == {"0:v": [0.0, 1.0], "1:v": [1.0, 1.0]}


def test_cli_error_is_one_line(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nope"), "--out", str(tmp_path / "v.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'nope'}: run folder not found"


def _get(url: str, host: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_server_answers_in_pieces_and_only_to_its_own_address(model):
    with ViewServer(model) as srv:
        status, page = _get(srv.url)
        assert status == 200 and b"harness view" in page and b"<script>" in page
        meta = json.loads(_get(srv.url + "api/meta")[1])
        assert [r["role"] for r in meta["runs"]] == ["viewed", "accepted"] and meta["items"] == 30
        rows = json.loads(_get(srv.url + "api/rows")[1])
        assert len(rows["ids"]) == 30 and len(rows["columns"]) == 8
        snips = json.loads(_get(srv.url + "api/snippets?i=5,9")[1])
        assert snips[0][0] == "message number 5 please" and HOSTILE_INPUT in snips[1][0]
        assert json.loads(_get(srv.url + "api/search?q=pwned")[1]) == [5, 9]
        assert json.loads(_get(srv.url + "api/item?i=11")[1])["id"] == "q011"
        assert _get(srv.url + "api/item?i=99")[0] == 400
        assert _get(srv.url + "api/item?i=x")[0] == 400
        assert _get(srv.url + "api/nothing")[0] == 404
        assert _get(srv.url + "api/meta", host=f"evil.example:{srv.port}")[0] == 403


def test_port_in_use_is_one_line(model):
    with ViewServer(model) as first:
        with pytest.raises(HarnessError, match=rf"^--port {first.port}: cannot listen on 127.0.0.1 .*leave --port out"):
            ViewServer(model, first.port)


def test_view_serves_until_ctrl_c_and_opens_the_browser_unless_told(view_runs, monkeypatch, capsys):
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)

    def interrupted(self):
        raise KeyboardInterrupt  # what Ctrl-C does to the serving loop

    monkeypatch.setattr(ViewServer, "serve_forever", interrupted)
    assert main(["view", str(view_runs[1])]) == 0
    out = capsys.readouterr().out
    url = re.search(r"http://127\.0\.0\.1:\d+/", out).group(0)
    assert opened == [url] and "stopped" in out and "Ctrl-C" in out
    assert main(["view", str(view_runs[1]), "--no-open"]) == 0
    assert opened == [url]


def test_cells_and_detail_read_old_and_new_record_layouts_alike():
    """A run folder written before the typed score reads as the same cells and detail as its lines rewritten."""
    from pathlib import Path

    from harness.view.data import cell_of
    from harness.view.detail import record_detail

    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "records_old_layout.jsonl"
    cells = []
    for line in fixture.read_text("utf-8").splitlines():
        rec = Record.model_validate_json(line)
        new_line = json.loads(rec.model_dump_json())
        assert "score_errors" in new_line and "explanations" not in new_line  # written in the typed layout
        old, new = cell_of(json.loads(line), 0, {}), cell_of(new_line, 0, {})
        assert (old.score, old.flags) == (new.score, new.flags)
        cells.append(old)
    # judged, judge failed, verdict unusable, empty answer, refused call, free-text primary judge failed
    assert [c.score for c in cells] == [1.0, 0.0, 1.0, 0.0, 0.0, None]
    assert [bool(c.flags & UNKNOWN) for c in cells] == [False, True, True, False, False, True]
    assert cells[3].flags & INVALID and cells[3].flags & ISSUE and cells[4].flags & ERROR
    detail = record_detail(Record.model_validate_json(fixture.read_text("utf-8").splitlines()[1]))
    voice = next(s for s in detail["scores"] if s["name"] == "voice")
    assert voice["value"] is None and voice["explanation"].startswith("judge failed: server_error")
    assert {"name": "recall_at_k", "value": 1.0, "explanation": ""} in detail["scores"]
    assert next(j for j in detail["judges"] if j["name"] == "voice")["error"].startswith("server_error")


def test_an_answer_made_of_tool_calls_is_shown_as_the_calls() -> None:
    from harness.records import Record, ToolCall
    from harness.view.data import cell_of
    from harness.view.detail import record_detail

    calls = [{"name": "refund_order", "arguments": '{"order_id": "LK-31008", "reason": "damaged"}'}]
    data = {"item_id": "t2", "variant": "baseline", "raw_text": "", "tool_calls": calls, "primary": 1.0}
    cell = cell_of(data, 0, {})
    assert cell.answer == 'refund_order({"order_id": "LK-31008", "reason": "damaged"})'
    rec = Record(item_id="t2", variant="baseline", model="m", model_id="m", request={}, raw_text="",
                 tool_calls=[ToolCall(**calls[0])])
    assert record_detail(rec)["tool_calls"] == cell.answer
    assert record_detail(rec.model_copy(update={"tool_calls": None})).get("tool_calls") is None
