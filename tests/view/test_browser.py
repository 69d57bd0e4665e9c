"""`harness view` in a real browser: Debian's chromium, headless, driven by Playwright, against the view of two
loopback runs (tests/view/runs.py). The filters give the right counts, the URL keeps them, the two runs show
side by side, hostile model output stays text, and the page asks nothing of any host but 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.view.model import ViewModel
from harness.view.page import write_html
from harness.view.server import ViewServer
from tests.view.runs import EXPECTED, GATE_ITEMS, HOSTILE, HOSTILE_INPUT

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the test extra installs it; Debian's chromium is installed apart (apt-get)
    sync_playwright = None

if sync_playwright is None:
    pytestmark = pytest.mark.skip(reason="the playwright package is not installed (pip install playwright; it drives "
                                         "Debian's chromium, no browser download)")
elif not CHROMIUM.exists():
    pytestmark = pytest.mark.skip(reason="Debian's chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def served(view_runs):
    accepted, candidate = view_runs
    with ViewServer(ViewModel(candidate, accepted)) as srv:
        yield srv


class Tab:
    """A page, and everything it asked for, logged or raised."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(m.text))
        self.page.on("dialog", lambda d: (self.problems.append("dialog: " + d.message), d.dismiss()))
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=20_000)

    def counts(self) -> dict[str, int]:
        return self.page.eval_on_selector_all(
            "button.filter", "bs => Object.fromEntries(bs.map(b => [b.dataset.filter, +b.querySelector('.count').textContent]))")

    def shown(self) -> str:
        return self.page.text_content("#shown")

    def wait_shown(self, n: int) -> None:
        self.page.wait_for_function(f"() => document.getElementById('shown').textContent.startsWith('{n} of ')",
                                    timeout=10_000)

    def row_ids(self) -> list[str]:
        return self.page.eval_on_selector_all(".row .id", "els => els.map(e => e.textContent)")

    def hash(self) -> str:
        return self.page.evaluate("location.hash")

    def open_item(self, item_id: str) -> None:
        self.page.click(f".row:has(.id:text-is('{item_id}'))")
        self.page.wait_for_function(f"() => (document.querySelector('#detail h2') || {{}}).textContent?.startsWith("
                                    f"'Item {item_id}')")

    def close(self) -> None:
        self.page.close()


def test_filters_count_right_and_the_url_keeps_them(browser, served):
    tab = Tab(browser, served.url)
    assert tab.counts() == EXPECTED
    for name, n in EXPECTED.items():
        tab.page.click(f"button[data-filter={name}]")
        assert tab.shown() == f"{n} of 30 items", name
    tab.page.click("button[data-filter=errors]")
    assert tab.row_ids() == ["q011"] and "f=errors" in tab.hash()
    tab.page.click("button[data-filter=bad]")
    assert tab.row_ids() == ["q005"]
    # right -> wrong against another variant of the same run: baseline -> few-shot
    tab.page.select_option("#pick-a", "0:baseline")
    tab.page.select_option("#pick-b", "0:fs")
    assert tab.counts()["r2w"] == 1 and tab.counts()["w2r"] == 4
    tab.page.click("button[data-filter=w2r]")
    assert tab.row_ids() == ["q000", "q001", "q002", "q003"]
    shared = tab.page.url
    # a field value, and a search: the counts are those within them
    tab.page.select_option("#field", "metadata.channel")
    tab.page.select_option("#value", "chat")
    assert tab.counts()["all"] == 15 and tab.counts()["errors"] == 1 and tab.counts()["w2r"] == 2
    tab.page.fill("#search", "pwned")
    tab.wait_shown(0)  # w2r among the chat items holding "pwned": none
    assert tab.counts()["all"] == 2 and "q=pwned" in tab.hash()
    # the link shared before the field filter opens the same view
    other = Tab(browser, shared)
    assert other.shown() == "4 of 30 items" and other.row_ids() == ["q000", "q001", "q002", "q003"]
    assert other.counts()["r2w"] == 1
    for t in (tab, other):
        assert all(u.startswith(served.url) for u in t.requests), t.requests
        assert t.problems == []
        t.close()


def test_sort_by_cost_and_score(browser, served):
    tab = Tab(browser, served.url + "#sort=cost&sc=0%3Afs&dir=desc")
    assert tab.row_ids()[:3] == ["q029", "q028", "q027"]  # few-shot's prompt grows with the item number
    tab.page.select_option("#sort", "score")
    tab.page.select_option("#sort-col", "0:ft")
    tab.page.click("#dir")  # back to ascending: the wrong answers first
    assert sorted(tab.row_ids()[:8]) == GATE_ITEMS and "sort=score" in tab.hash()
    assert tab.problems == []
    tab.close()


def test_gate_on_top_and_two_runs_side_by_side(browser, served):
    tab = Tab(browser, served.url)
    gate = tab.page.text_content("#gate")
    assert "gate: FAIL (accuracy-drop in variant ft" in gate and "accuracy-drop:" in gate
    tab.page.click("#gate-items")
    assert tab.row_ids() == GATE_ITEMS and "f=gate" in tab.hash()
    tab.open_item("q001")
    ft = tab.page.locator("section.variant", has=tab.page.locator("h3", has_text="ft"))
    sides = ft.locator(".side")
    assert sides.count() == 2
    assert sides.nth(0).locator(".side-label").text_content().startswith("accepted")
    assert sides.nth(0).locator("pre.answer").text_content() == '{"intent": "lost_card", "urgent": false}'
    assert sides.nth(1).locator("pre.answer").text_content() == '{"intent": "refund", "urgent": false}'
    changes = ft.locator(".changes").text_content()
    assert changes.startswith("the answer changed") and "primary 1 → 0" in changes
    assert "item=q001" in tab.hash() and tab.problems == []
    tab.close()


def test_hostile_output_is_text_and_never_runs(browser, served):
    tab = Tab(browser, served.url + "#item=q005")
    tab.page.wait_for_selector("#detail h2")
    tab.page.eval_on_selector_all("details", "ds => ds.forEach(d => d.open = true)")
    answers = tab.page.eval_on_selector_all("pre.answer", "ps => ps.map(p => p.textContent)")
    assert HOSTILE in answers
    tab.open_item("q009")
    assert HOSTILE_INPUT in tab.page.text_content("#detail dl.fields")
    snippet = tab.page.text_content(".row:has(.id:text-is('q009')) .snip")
    assert HOSTILE_INPUT in snippet
    assert tab.page.evaluate("window.__pwned") is None
    assert tab.page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert tab.page.evaluate("document.scripts.length") == 1  # the page's own script, nothing added
    assert all(u.startswith(served.url) for u in tab.requests), tab.requests
    assert tab.problems == []
    tab.close()


def test_out_file_works_alone_and_asks_nothing(browser, view_runs, tmp_path):
    accepted, candidate = view_runs
    out = write_html(ViewModel(candidate, accepted), tmp_path / "view.html")
    url = out.resolve().as_uri()
    tab = Tab(browser, url)
    assert tab.counts() == EXPECTED
    tab.page.click("button[data-filter=bad]")
    tab.open_item("q005")
    assert HOSTILE in tab.page.eval_on_selector_all("pre.answer", "ps => ps.map(p => p.textContent)")
    chunk = tab.page.locator(".chunk .label").first.text_content()
    assert chunk.startswith("retrieved chunk 1: doc ")
    tab.page.fill("#search", "number 19")
    tab.wait_shown(0)
    tab.page.click("button[data-filter=all]")
    assert tab.row_ids() == ["q019"]
    assert tab.page.evaluate("window.__pwned") is None
    assert tab.requests == [url] and tab.problems == []
    tab.close()
