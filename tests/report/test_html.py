"""report.md / report.html: self-contained, escaped, and actually rendered by headless Chromium."""

import json
import re
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from harness.api import run
from harness.cli import main
from harness.records import Record, Usage
from harness.report.html import MAX_ITEM_ROWS, PALETTE
from harness.report.write import write_summary
from harness.runner.runner import RunOptions
from tests.analysis.test_compare import FT_MODEL, item_number, make_evalset, scripted
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAIServer, Reply

CHROMIUM = Path("/usr/bin/chromium")
XSS = "<script>alert(1)</script>"


def report_run(tmp_path):
    """Three variants, one of which answers an item with a script tag and another with an HTTP 500."""
    ev = make_evalset(tmp_path, n_test=12, n_train=12)
    base = scripted(wrong={"gpt-4o-mini": {0, 1, 2, 3}}, errors={"gpt-4o-mini": {11}})

    def handler(body):
        if body["model"] == "gpt-4o" and item_number(body) == 5:
            return Reply(text=f'{XSS} <img src="https://evil.example/x.png">', prompt_tokens=100,
                         completion_tokens=10)
        return base(body)

    with FakeOpenAIServer(handler, models=["gpt-4o-mini", "gpt-4o", FT_MODEL]) as srv:
        url = srv.base_url
        cfg = make_config(
            tmp_path, ev, url,
            models={"mini": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o-mini",
                             "max_retries": 0},
                    "big": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o"},
                    "tuned": {"provider": "openai-compatible", "base_url": url, "model": FT_MODEL}},
            variants=[{"name": "zero", "kind": "baseline", "model": "mini"},
                      {"name": "big", "kind": "few_shot", "model": "big", "shots": 2},
                      {"name": "ft", "kind": "fine_tuned", "model": "tuned"}],
            target_accuracy=0.9, monthly_requests=50_000)
        res = run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False, use_cache=False))
    return res.run_dir


def test_report_command_writes_all_files_escaped_and_offline(tmp_path, capsys):
    run_dir = report_run(tmp_path)
    for name in ("summary.csv", "summary.md", "report.md", "report.html"):
        (run_dir / name).unlink()
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "report.md" in out and "report.html" in out
    for name in ("summary.csv", "summary.md", "report.md", "report.html"):
        assert (run_dir / name).exists(), name
    page = (run_dir / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()  # no script at all: the model's nor ours
    assert "<img" not in page.lower()
    # self-contained: nothing is loaded from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"url\(|@import|<link|<iframe|<object|<embed", page, re.I)
    assert not re.search(r"https?://", page.replace("https://evil.example/x.png", ""))
    md = (run_dir / "report.md").read_text()
    for heading in ("## Decision summary", "## Results", "## Paired comparison against zero", "## Cost",
                    "## Fine-tuning economics", "## Latency", "## Per field and retrieval", "## Method"):
        assert heading in md


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into rows of pixel bytes, undoing the filters."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(v for j, v in enumerate(line) if j % 4 != 3))
        prev = line
    return width, height, rows


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)")
def test_html_renders_in_headless_chromium(tmp_path):
    run_dir = report_run(tmp_path)
    url = (run_dir / "report.html").resolve().as_uri()
    dom = _chromium(["--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    # the browser parsed the inline SVG charts into elements
    for chart in ("chart-acc-cost", "chart-latency", "chart-fields", "chart-diff"):
        assert f'id="{chart}"' in page, chart
    assert len(re.findall(r'<circle class="point"', page)) == 3  # one per variant (all priced)
    assert len(re.findall(r'<rect class="box"', page)) == 3
    assert len(re.findall(r'<rect class="bar"', page)) == 3 * 2  # variants x fields (intent, urgent)
    assert len(re.findall(r'<circle class="diff-point"', page)) == 2  # big and ft vs zero
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    results = page.split('id="results"')[1].split("</table>")[0]
    assert results.count("<tr>") == 4  # header + 3 variants
    items = page.split('id="items"')[1].split("</table>")[0]
    assert items.count("<tr>") == 13  # header + 12 items
    assert 'class="err"' in items  # the failed call is shown as an error, not a wrong answer

    shot = tmp_path / "shot.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1100,2400", "--hide-scrollbars", url], tmp_path)
    assert shot.exists(), res.stderr[-2000:]
    width, height, rows = _png_pixels(shot)
    assert (width, height) == (1100, 2400)
    pixels = [row[i:i + 3] for row in rows[::4] for i in range(0, len(row), 12)]
    non_white = sum(1 for p in pixels if p != b"\xff\xff\xff")
    assert non_white > len(pixels) * 0.02  # text, tables and charts, not a blank page
    palette = {bytes.fromhex(c[1:]) for c in PALETTE[:3]}
    assert sum(1 for p in pixels if p in palette) > 20  # the variants' colours: the charts were painted


def _synthetic_run(run_dir: Path, n_items: int) -> None:
    """A 2-variant run folder written directly, for size and speed checks."""
    run_dir.mkdir(parents=True)
    price = {"input_per_1m": 0.15, "cached_input_per_1m": 0.075, "output_per_1m": 0.6, "training_per_1m": None,
             "basis": "table", "source": "test"}
    manifest = {"run_id": "big", "name": "big", "status": "completed", "label_fields": {"intent": ["a", "b"]},
                "evalset": {"name": "e", "path": str(run_dir / "gone"), "content_hash": "h", "test_items": n_items,
                            "train_items": 0},
                "variants": {v: {"kind": k, "model": "m", "model_id": "gpt-4o-mini", "price": price}
                             for v, k in (("baseline", "baseline"), ("fs", "few_shot"))}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    (run_dir / "config.json").write_text(json.dumps({"monthly_requests": 1000}))
    with (run_dir / "records.jsonl").open("w") as fh:
        for v in ("baseline", "fs"):
            for i in range(n_items):
                ok = (i % 10) < (7 if v == "baseline" else 8)
                exp = {"intent": "ab"[i % 2]}
                ans = exp if ok else {"intent": "ab"[(i + 1) % 2]}
                rec = Record(item_id=f"q{i}", variant=v, model="m", model_id="gpt-4o-mini", expected=exp,
                             request={"messages": [{"role": "user", "content": f"item {i}"}]},
                             raw_text=json.dumps(ans), parsed=ans, latency_s=0.1 + (i % 7) / 100,
                             usage=Usage(prompt_tokens=100, completion_tokens=10, total_tokens=110),
                             started_at=1000 + i * 0.01, cost_usd=2.1e-5,
                             scores={"correct": ok, "format_valid": True, "fields": {"intent": ok}})
                fh.write(rec.model_dump_json() + "\n")


def test_report_is_fast_and_capped_for_10000_records(tmp_path):
    run_dir = tmp_path / "big"
    _synthetic_run(run_dir, 5000)
    t0 = time.perf_counter()
    df = write_summary(run_dir)
    elapsed = time.perf_counter() - t0
    assert elapsed < 20, f"report took {elapsed:.1f}s for 10,000 records"
    assert list(df["n"]) == [5000, 5000]
    fs = df.set_index("variant").loc["fs"]
    assert fs["accuracy_diff"] == pytest.approx(0.1) and fs["right_to_wrong"] == 0 and fs["wrong_to_right"] == 500
    page = (run_dir / "report.html").read_text()
    items = page.split('id="items"')[1].split("</table>")[0]
    assert items.count("<tr>") == MAX_ITEM_ROWS + 1
    assert f"{MAX_ITEM_ROWS} of 5000 items shown" in page
    assert len(page) < 2_000_000
    # items where the variants disagree come first
    first_row = items.split("<tr>")[2]
    assert 'class="ok"' in first_row and 'class="bad"' in first_row
    assert "is gone" in (run_dir / "report.md").read_text()
