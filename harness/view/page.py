"""The page: one HTML document with its CSS and JavaScript inline (no CDN, no font, no image from anywhere).

Served by `harness view` it asks the local server for data; written by `--out` it carries the same data
inside, compact: each item's snippets, search text and full detail as one JSON line, gzip-packed (base64) in
chunks of items that the page unpacks only when it shows them, and long texts that repeat (instructions,
few-shot examples, retrieved chunks) stored once and referred to by number.
A Content-Security-Policy with the hashes of its own script and style lets nothing else run or load.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from harness.view.model import ViewModel

SCRIPTS = ("base.js", "detail.js", "view.js")
INTERN_FROM = 64  # texts this long or longer are stored once in --out files
CHUNK = 500  # items per packed chunk of an --out file: opening an item unpacks its chunk only
CONNECT = {True: "'self'", False: "'none'"}  # the served page asks its own server for data; a file asks nothing


def _asset(name: str) -> str:
    return resources.files("harness.view").joinpath("static", name).read_text(encoding="utf-8")


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def embed_json(value: Any) -> str:
    """JSON safe inside a <script> block: no '<', '>' or '&' left (each is a \\u escape within a string)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(title: str, data_blocks: str = "", *, server: bool) -> str:
    script = "(function () {\n\"use strict\";\n" + "\n".join(_asset(n) for n in SCRIPTS) + "\n})();\n"
    css = _asset("view.css")
    csp = (f"default-src 'none'; script-src {_sha(script)}; style-src {_sha(css)}; img-src 'none'; "
           f"font-src 'none'; connect-src {CONNECT[server]}; base-uri 'none'; form-action 'none'")
    esc = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{esc} — harness view</title>\n<style>{css}</style></head>\n<body>\n"
            "<header id=\"top\"><p class=\"note\">loading…</p></header>\n<div id=\"bar\"></div>\n"
            "<main><div id=\"left\"><div id=\"list-head\"></div><div id=\"list\" tabindex=\"0\"><div id=\"spacer\">"
            "<div id=\"rows\"></div></div></div></div><section id=\"detail\"><p class=\"note\">Pick an item on "
            "the left (or use the arrow keys in the list).</p></section></main>\n"
            f"{data_blocks}<script>{script}</script>\n</body></html>\n")


def title_of(model: ViewModel) -> str:
    names = [r.name for r in model.runs]
    return names[0] + (f" vs {names[1]}" if len(names) > 1 else "")


class _Strings:
    """Long texts stored once; an int in a text field of the detail means strings[n]."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def ref(self, text: Any) -> Any:
        if not isinstance(text, str) or len(text) < INTERN_FROM:
            return text
        return self.index.setdefault(text, len(self.index))

    def compact(self, detail: dict[str, Any]) -> dict[str, Any]:
        for recs in detail["cols"]:
            for r in recs or []:
                r["raw"] = self.ref(r["raw"])
                for m in r["messages"]:
                    m["content"] = self.ref(m["content"])
                    for c in m.get("chunks") or []:
                        c["text"] = self.ref(c["text"])
                for j in r["judges"]:
                    for m in j.get("prompt") or []:
                        m["content"] = self.ref(m["content"])
        return detail


def _pack(lines: Iterable[str]) -> str:
    """Lines (each one JSON value, no newline inside) as base64 of their gzip: ASCII, safe in a <script> block."""
    data = "\n".join(lines).encode("utf-8")
    return base64.b64encode(gzip.compress(data, compresslevel=6, mtime=0)).decode("ascii")


def _chunks(lines: Iterator[str], size: int) -> list[str]:
    out, batch = [], []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            out.append(_pack(batch))
            batch = []
    if batch or not out:
        out.append(_pack(batch))
    return out


def _block(block_id: str, value: Any) -> str:
    return f"<script type=\"application/json\" id=\"{block_id}\">{embed_json(value)}</script>\n"


def write_html(model: ViewModel, out: Path) -> Path:
    """The whole view as one self-contained file: the compact rows, and each item's snippets, search text and
    full detail as one JSON line, gzip-packed in chunks of CHUNK items that the page unpacks when it needs them."""
    strings = _Strings()
    n = len(model.ids)
    dumps = json.dumps
    items = _chunks((dumps(strings.compact(model.item(i)), ensure_ascii=False, allow_nan=False) for i in range(n)),
                    CHUNK)
    snips = _chunks((dumps(s, ensure_ascii=False) for s in model.snippets(list(range(n)))), CHUNK)
    texts = _pack(model.search_text(i).replace("\n", " ") for i in range(n))
    blocks = (_block("data-meta", {**model.meta(), "chunk": CHUNK})
              + _block("data-rows", [_pack([dumps(model.rows(), ensure_ascii=False, allow_nan=False)])])
              + _block("data-snips", snips) + _block("data-search", [texts]) + _block("data-items", items)
              + _block("data-strings", [_pack([dumps(list(strings.index), ensure_ascii=False)])]))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(title_of(model), blocks, server=False), encoding="utf-8")
    return out
