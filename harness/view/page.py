"""The page: one HTML document with its CSS and JavaScript inline (no CDN, no font, no image from anywhere).

Served by `harness view` it asks the local server for data; written by `--out` it carries the same data
inside: the compact arrays as JSON, each item's full detail as one JSON line (parsed only when opened), long
texts that repeat (instructions, few-shot examples, retrieved chunks) stored once and referred to by number.
A Content-Security-Policy with the hashes of its own script and style lets nothing else run or load.
"""

from __future__ import annotations

import base64
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from harness.view.model import ViewModel

SCRIPTS = ("base.js", "detail.js", "view.js")
INTERN_FROM = 64
CONNECT = {True: "'self'", False: "'none'"}  # the served page asks its own server for data; a file asks nothing  # texts this long or longer are stored once in --out files


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


def _block(kind: str, block_id: str, text: str) -> str:
    return f"<script type=\"{kind}\" id=\"{block_id}\">{text}</script>\n"


def write_html(model: ViewModel, out: Path) -> Path:
    """The whole view as one self-contained file."""
    strings = _Strings()
    n = len(model.ids)
    items = "\n".join(embed_json(strings.compact(model.item(i))) for i in range(n))
    blocks = (_block("application/json", "data-meta", embed_json(model.meta()))
              + _block("application/json", "data-rows", embed_json(model.rows()))
              + _block("application/json", "data-snips", embed_json(model.snippets(list(range(n)))))
              + _block("application/json", "data-search", embed_json([model.search_text(i) for i in range(n)]))
              + _block("text/plain", "data-items", items)
              + _block("application/json", "data-strings", embed_json(list(strings.index))))
    out = Path(out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(title_of(model), blocks, server=False), encoding="utf-8")
    return out
