"""Benchmark: `harness view` on a 100,000-record run, first render timed in headless chromium.

    .venv/bin/python bench/view_bench.py [--items 25000] [--variants 4] [--out FILE] [--html]
    .venv/bin/python bench/view_bench.py --screenshot docs/view.png

Writes a synthetic run folder like the demo's (the support-triage tickets, cycled to --items, four variants:
baseline, few-shot, RAG, fine-tuned, with the prompts the harness renders), starts the view's server on it,
and opens the page in Debian's chromium (Playwright, executable_path=/usr/bin/chromium) three times: the figure
is the time from navigation to the first rows on screen (the page's own performance clock). Then it times what
a user does next: a filter, a search, opening an item, a jump to the end of the list. With --html it also
writes the self-contained file (--out of `harness view`) and times its first render.

--screenshot writes the picture for the README instead: a demo-like accepted run and a candidate run whose
fine-tuned variant got worse, side by side, with the right -> wrong filter on and an item open.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.data.evalset import content_hash, load_evalset  # noqa: E402
from harness.prompts.variants import render_prompt  # noqa: E402
from harness.records import Record, Usage  # noqa: E402

EVALSET = REPO / "evalsets" / "support-triage"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
# (name, kind, share answered right, mean latency s)
VARIANTS = [("baseline", "baseline", 0.52, 0.9), ("few-shot", "few_shot", 0.68, 1.6), ("rag", "rag", 0.61, 1.9),
            ("fine-tuned", "fine_tuned", 0.86, 0.8)]
FIELDS = {"team": ["network", "hardware", "installations", "mobile", "accounts", "billing"],
          "priority": ["low", "normal", "high", "urgent"]}
PRICE_PER_HOUR = 0.05  # the demo's self-hosted price: busy time x this


@dataclass
class Passage:
    doc_id: str
    text: str


def write_evalset(folder: Path, n: int) -> tuple[Any, list[tuple[str, Any]]]:
    """The support-triage eval set with its test items cycled to n (ids item, item-1, item-2, ...)."""
    ev = load_evalset(EVALSET)
    items = [(it.id if k == 0 else f"{it.id}-{k}", it) for k in range(n // len(ev.test) + 1) for it in ev.test][:n]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.yaml").write_text((EVALSET / "task.yaml").read_text())
    with (folder / "test.jsonl").open("w") as fh:
        for item_id, it in items:
            fh.write(json.dumps({"id": item_id, "input": it.input, "expected": it.expected,
                                 "expected_doc_ids": it.expected_doc_ids}) + "\n")
    return ev, items


def answer_for(rng: random.Random, expected: dict[str, Any], right: float) -> tuple[str | None, Any, str | None]:
    """(raw text, parsed, error) for one call: mostly JSON, right with probability `right`."""
    roll = rng.random()
    if roll < 0.004:
        return None, None, "Server error '500 Internal Server Error'"
    if roll < 0.01:
        return "I think this ticket is about the network team, priority normal.", None, None
    got = dict(expected)
    if rng.random() > right:
        field = rng.choice(list(FIELDS))
        got[field] = rng.choice([v for v in FIELDS[field] if v != expected[field]])
    return json.dumps(got), got, None


def make_record(ev: Any, item_id: str, it: Any, variant: tuple[str, str, float, float], rng: random.Random,
                shift: float) -> Record:
    name, kind, right, mean_latency = variant
    shots = rng.sample(ev.train, 4) if kind == "few_shot" else []
    passages = [Passage(d.id, d.text[:700]) for d in ev.docs if d.id in (it.expected_doc_ids or [])][:2] \
        if kind == "rag" else []
    messages = render_prompt(ev, it.input, examples=shots, passages=passages)
    raw, parsed, error = answer_for(rng, it.expected, max(0.0, min(1.0, right + shift)))
    latency = rng.lognormvariate(0, 0.35) * mean_latency
    fields = {k: parsed.get(k) == v for k, v in it.expected.items()} if parsed else {}
    correct = bool(parsed) and all(fields.values())
    checks = {} if error else {"json_parsed": parsed is not None, "format_valid": parsed is not None,
                               "correct": correct, "fields": fields, "primary": 1.0 if correct else 0.0}
    prompt_tokens = sum(len(m["content"]) for m in messages) // 4
    return Record(item_id=item_id, variant=name, model="gemma-ft" if kind == "fine_tuned" else "gemma",
                  model_id="gemma-3-270m-ft" if kind == "fine_tuned" else "gemma-3-270m", request={
                      "model": "gemma-3-270m", "messages": messages, "temperature": 0.0, "max_tokens": 40, "seed": 0},
                  expected=it.expected, raw_text=raw, parsed=parsed, error=error,
                  error_kind="server_error" if error else None, latency_s=round(latency, 3),
                  usage=None if error else Usage(prompt_tokens=prompt_tokens, completion_tokens=24,
                                                 total_tokens=prompt_tokens + 24),
                  finish_reason=None if error else "stop", **checks,
                  cost_usd=None if error else latency * PRICE_PER_HOUR / 3600,
                  shot_ids=[s.id for s in shots] or None, retrieved_doc_ids=[p.doc_id for p in passages] or None)


def write_run(root: Path, name: str, n: int, *, seed: int = 0, shift: dict[str, float] | None = None,
              variants: int = 4) -> Path:
    """A completed run folder of n items x `variants` variants, written directly."""
    evdir = root / "evalset"
    if not (evdir / "test.jsonl").exists():
        write_evalset(evdir, n)
    ev = load_evalset(EVALSET)
    items = [(it.id if k == 0 else f"{it.id}-{k}", it) for k in range(n // len(ev.test) + 1) for it in ev.test][:n]
    run = root / name
    run.mkdir(parents=True)
    chosen = VARIANTS[:variants]
    manifest = {"run_id": name, "name": "demo", "status": "completed", "scoring": {"primary": "exact"},
                "evalset": {"name": "support-triage", "path": str(evdir), "content_hash": content_hash(evdir),
                            "test_items": n},
                "variants": {v[0]: {"kind": v[1], "model": "gemma", "model_id": "gemma-3-270m"} for v in chosen}}
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (run / "config.json").write_text(json.dumps({"name": "demo"}))
    with (run / "records.jsonl").open("w") as fh:
        for v in chosen:
            rng = random.Random(f"{seed}-{v[0]}")
            for item_id, it in items:
                fh.write(make_record(ev, item_id, it, v, rng, (shift or {}).get(v[0], 0.0)).model_dump_json() + "\n")
    return run


def launch():
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def first_render(browser: Any, url: str) -> tuple[float, Any]:
    """Seconds from navigation to the first rows on screen, by the page's own clock; and the open page."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url)
    page.wait_for_selector("body[data-ready='1'] .row", timeout=120_000)
    return page.evaluate("() => performance.now()") / 1000, page


def timed(page: Any, action: Any, done_js: str) -> float:
    t = time.perf_counter()
    action()
    page.wait_for_function(done_js, timeout=60_000)
    return time.perf_counter() - t


def interactions(page: Any) -> dict[str, float]:
    """Seconds for what comes next: a filter, a search (with its 250 ms typing pause), opening an item, a jump
    to the end of the list with its text on screen."""
    shown = "() => document.getElementById('shown').textContent"
    changed = lambda before: f"() => ({shown})() !== {json.dumps(before)}"  # noqa: E731
    out = {"filter_s": timed(page, lambda: page.click("button[data-filter=errors]"), changed(page.evaluate(shown)))}
    page.click("button[data-filter=all]")
    out["search_s"] = timed(page, lambda: page.fill("#search", "internet"), changed(page.evaluate(shown)))
    first = page.text_content(".row .id")
    out["open_item_s"] = timed(page, lambda: page.click(".row"),
                               f"() => (document.querySelector('#detail h2') || {{}}).textContent?.includes({json.dumps(first)})")
    page.fill("#search", "")
    total = page.evaluate(shown).split(" of ")[1]  # "N items"
    page.wait_for_function(f"() => ({shown})() === '{total.split()[0]} of {total}'")
    out["scroll_to_end_s"] = timed(page, lambda: page.evaluate("() => { const l = document.getElementById('list'); "
                                                               "l.scrollTop = l.scrollHeight; }"),
                                   "() => [...document.querySelectorAll('.row .snip')].some(s => s.textContent !== '…') "
                                   "&& document.getElementById('list').scrollTop > 1000")
    return {k: round(v, 3) for k, v in out.items()}


def bench(items: int, variants: int, html: bool) -> dict[str, Any]:
    from harness.view.model import ViewModel
    from harness.view.page import write_html
    from harness.view.server import ViewServer

    result: dict[str, Any] = {"items": items, "variants": variants, "records": items * variants}
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        run = write_run(Path(d), "big", items, variants=variants)
        result["write_run_s"] = round(time.perf_counter() - t, 1)
        result["records_mb"] = round((run / "records.jsonl").stat().st_size / 1e6, 1)
        t = time.perf_counter()
        model = ViewModel(run)
        server = ViewServer(model).start()
        result["server_ready_s"] = round(time.perf_counter() - t, 2)
        result["rows_json_mb"] = round(len(server.rows) / 1e6, 2)
        result["server_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        pw, browser = launch()
        try:
            renders = []
            for _ in range(3):
                seconds, page = first_render(browser, server.url)
                renders.append(round(seconds, 3))
                last = page
            result["first_render_s"] = renders
            result["first_render_median_s"] = statistics.median(renders)
            result["after_render"] = interactions(last)
            if html:
                t = time.perf_counter()
                out = write_html(model, Path(d) / "view.html")
                result["html_write_s"] = round(time.perf_counter() - t, 1)
                result["html_mb"] = round(out.stat().st_size / 1e6, 1)
                result["html_first_render_s"] = round(first_render(browser, out.resolve().as_uri())[0], 3)
        finally:
            browser.close()
            pw.stop()
            server.stop()
    result["target"] = "first render <= 3 s for 100,000 records"
    return result


def screenshot(path: Path, runs: list[Path] | None = None, fragment: str = "f=r2w") -> None:
    """The README's picture: two synthetic demo-like runs, or the run folders given (a run, then its accepted
    one), opened on the filter `fragment`."""
    from harness.view.model import ViewModel
    from harness.view.server import ViewServer

    with tempfile.TemporaryDirectory() as d:
        if runs:
            candidate, accepted = runs[0], (runs[1] if len(runs) > 1 else None)
        else:
            accepted = write_run(Path(d), "demo-accepted", 140, seed=1)
            candidate = write_run(Path(d), "demo-20261205-101500", 140, seed=2, shift={"fine-tuned": -0.2})
        with ViewServer(ViewModel(candidate, accepted)) as server:
            pw, browser = launch()
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 950})
                page.goto(server.url + "#" + fragment)
                page.wait_for_selector("body[data-ready='1'] .row")
                page.click(".row >> nth=0")
                page.wait_for_selector("#detail section.variant")
                page.wait_for_timeout(300)
                page.screenshot(path=str(path))
            finally:
                browser.close()
                pw.stop()
    print(f"wrote {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=25_000, help="items (default 25,000: x 4 variants = 100,000 records)")
    p.add_argument("--variants", type=int, default=4, choices=range(1, 5))
    p.add_argument("--html", action="store_true", help="also write and open the self-contained file")
    p.add_argument("--out", type=Path, help="write the figures as JSON here too")
    p.add_argument("--screenshot", type=Path, help="write the README's picture of the view instead")
    p.add_argument("--runs", type=Path, nargs="+", metavar="RUN_DIR",
                   help="with --screenshot: these run folders (a run, then its accepted run) instead of synthetic ones")
    p.add_argument("--fragment", default="f=r2w", help="with --screenshot: the view's URL fragment (its filter)")
    args = p.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} not found: apt-get install chromium (and pip install playwright)")
    if args.screenshot:
        return screenshot(args.screenshot, args.runs, args.fragment)
    result = {"machine": f"{os.uname().machine}, {os.cpu_count()} cores", **bench(args.items, args.variants, args.html)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
