"""report.html: one self-contained file a manager can open anywhere — inline CSS and inline SVG charts
drawn here in Python, no JavaScript, no fonts or scripts from the network.

Everything that comes from users or models (variant names, model ids, outputs, expected answers, notes)
goes through html.escape: a model output is data, and a report must never execute it.
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from harness.analysis.stats import first_records
from harness.analysis.units import column_units
from harness.numbers import as_float
from harness.report.content import (
    COST_DISPLAY,
    METHOD_NOTES,
    PAIRED_DISPLAY,
    REPEAT_DISPLAY,
    display_columns,
    extra_columns,
    has_repeats,
    judge_lines,
    measured,
    score_columns,
    score_lines,
    split_note,
    training_facts,
    variant_notes,
    with_primary_heading,
)
from harness.report.decision import break_even_text, decision_lines
from harness.report.format import cell, interval, pct, pp, usd
from harness.report.parity import agreement_section, parity_lines
from harness.report.plan_text import plan_html
from harness.report.service_text import projection_intervals
from harness.report.stats_text import paired_note
from harness.rundir.manifest import Manifest
from harness.scoring.scorers import primary_value

if TYPE_CHECKING:
    from harness.analysis.economics import Economics
    from harness.analysis.summary import Analysis

MAX_ITEM_ROWS = 200  # per-item outputs shown; the full set is in records.jsonl
MAX_OUTPUT_CHARS = 300
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;
padding-bottom:.2rem}.meta{color:#555;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0;width:100%}
th,td{border:1px solid #ddd;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;white-space:nowrap}
.summary li{margin:.3rem 0}.note{color:#555;font-size:.85rem}
.scroll{overflow-x:auto}td.skipped{color:#777;font-style:italic;white-space:normal}
svg{background:#fff;border:1px solid #eee;margin:.4rem 0;max-width:100%;height:auto}
svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#333}
.axis line,.axis path{stroke:#999}.grid{stroke:#eee}
td.ok{background:#eaf6ea}td.bad{background:#fbeaea}td.err{background:#fff6dd}td.part{background:#f3f3e6}
td pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:.78rem}
.legend span{display:inline-block;margin-right:1rem;font-size:.85rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _percent_axis(svg: Any, left: float, width: float, y: Any) -> None:
    """Opens the axis group and draws the 0-100% gridlines with their labels."""
    svg.add('<g class="axis">')
    for t in [i / 5 for i in range(6)]:
        svg.add(f'<line class="grid" x1="{left}" x2="{left + width}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>')
        svg.text(left - 6, y(t) + 4, pct(t, digits=0), "end")


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering lo..hi (1, 2, 5 x 10^k steps)."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    count = math.ceil((hi - start) / step - 1e-9)
    return [round(start + i * step, 12) for i in range(count + 1)]


class Svg:
    """A minimal SVG builder for plots with a data->pixel mapping."""

    def __init__(self, chart_id: str, width: int, height: int, title: str):
        self.parts = [f'<svg id="{chart_id}" class="chart" role="img" aria-label="{esc(title)}" '
                      f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
                      f"<title>{esc(title)}</title>"]

    def add(self, s: str) -> None:
        self.parts.append(s)

    def text(self, x: float, y: float, s: str, anchor: str = "start", cls: str = "", extra: str = "") -> None:
        c = f' class="{cls}"' if cls else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}{extra}>{esc(s)}</text>')

    def done(self) -> str:
        return "\n".join(self.parts + ["</svg>"])


def _colors(names: list[str]) -> dict[str, str]:
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


def chart_accuracy_cost(df: pd.DataFrame, colors: dict[str, str]) -> str:
    """Accuracy (with its 95% interval) against cost per request: the trade-off in one picture."""
    pts = []
    skipped = []
    for _, r in df.iterrows():
        acc, cost = as_float(r.get("accuracy")), as_float(r.get("cost_per_request_usd"))
        if acc is None:
            continue
        if cost is None:
            skipped.append(str(r["variant"]))
            continue
        lo, hi = as_float(r.get("accuracy_lo")), as_float(r.get("accuracy_hi"))
        pts.append((str(r["variant"]), cost, acc, lo if lo is not None else acc, hi if hi is not None else acc))
    W, H, L, R, T, B = 640, 340, 70, 150, 20, 50
    svg = Svg("chart-acc-cost", W, H, "Accuracy vs cost per request (95% intervals)")
    pw, ph = W - L - R, H - T - B
    xmax = max([p[1] for p in pts] + [0.0]) or 1e-6
    xt = nice_ticks(0.0, xmax * 1.1)
    x1 = xt[-1]

    def X(v: float) -> float:
        return L + pw * v / x1

    def Y(v: float) -> float:
        return T + ph * (1 - v)

    _percent_axis(svg, L, pw, Y)
    for t in xt:
        svg.add(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{T + ph}" y2="{T + ph + 4}"/>')
        svg.text(X(t), T + ph + 16, usd(t, trim=True), "middle")
    svg.add(f'<line x1="{L}" x2="{L + pw}" y1="{T + ph}" y2="{T + ph}"/><line x1="{L}" x2="{L}" y1="{T}" '
            f'y2="{T + ph}"/></g>')
    svg.text(L + pw / 2, H - 10, "cost per request (USD)", "middle")
    svg.text(14, T + ph / 2, "accuracy", "middle", extra=f' transform="rotate(-90 14 {T + ph / 2:.1f})"')
    for name, cost, acc, lo, hi in pts:
        x = X(cost)
        col = colors.get(name, "#333")
        svg.add(f'<line class="errorbar" x1="{x:.1f}" x2="{x:.1f}" y1="{Y(hi):.1f}" y2="{Y(lo):.1f}" '
                f'stroke="{col}" stroke-width="2"/>')
        for yy in (Y(hi), Y(lo)):
            svg.add(f'<line x1="{x - 5:.1f}" x2="{x + 5:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{col}" stroke-width="2"/>')
        svg.add(f'<circle class="point" data-variant="{esc(name)}" cx="{x:.1f}" cy="{Y(acc):.1f}" r="5" '
                f'fill="{col}"><title>{esc(name)}: {pct(acc)} {interval(lo, hi, unit=True)}, {esc(usd(cost, trim=True))}/request'
                f'</title></circle>')
        svg.text(x + 8, Y(acc) - 6, name)
    if skipped:
        svg.text(L + pw + 10, T + 12, "not plotted (cost unknown):")
        for i, n in enumerate(skipped):
            svg.text(L + pw + 10, T + 28 + 14 * i, n)
    return svg.done()


def chart_latency(frame: pd.DataFrame, order: list[str], colors: dict[str, str]) -> str:
    """Latency distribution per variant as box plots (p25–p75 box, median, p5–p95 whiskers); cache hits
    are left out because they would fake speed."""
    lat = frame[frame["answered"] & ~frame["cache_hit"] & frame["latency_s"].notna()]
    groups = [(v, lat.loc[lat["variant"] == v, "latency_s"].to_numpy(dtype=float)) for v in order]
    groups = [(v, a) for v, a in groups if a.size]
    W, L, R, T, rowh = 640, 130, 30, 20, 34
    H = T + rowh * max(len(groups), 1) + 45
    svg = Svg("chart-latency", W, H, "Latency per variant (seconds, cache hits excluded)")
    pw = W - L - R
    if not groups:
        svg.text(W / 2, H / 2, "no timed calls", "middle")
        return svg.done()
    xmax = max(float(np.percentile(a, 95)) for _, a in groups) * 1.1 or 1.0
    xt = nice_ticks(0.0, xmax)
    x1 = xt[-1]

    def X(v: float) -> float:
        return L + pw * min(v, x1) / x1

    base = T + rowh * len(groups)
    svg.add('<g class="axis">')
    for t in xt:
        svg.add(f'<line class="grid" x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{T}" y2="{base}"/>')
        svg.text(X(t), base + 16, f"{t:g}", "middle")
    svg.add(f'<line x1="{L}" x2="{L + pw}" y1="{base}" y2="{base}"/></g>')
    svg.text(L + pw / 2, H - 8, "latency (s)", "middle")
    for i, (name, a) in enumerate(groups):
        p5, p25, p50, p75, p95 = (float(x) for x in np.percentile(a, [5, 25, 50, 75, 95]))
        cy = T + rowh * i + rowh / 2
        col = colors.get(name, "#333")
        svg.text(L - 8, cy + 4, name, "end")
        svg.add(f'<line class="whisker" x1="{X(p5):.1f}" x2="{X(p95):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="{col}"/>')
        svg.add(f'<rect class="box" data-variant="{esc(name)}" x="{X(p25):.1f}" y="{cy - 10:.1f}" '
                f'width="{max(X(p75) - X(p25), 1):.1f}" height="20" fill="{col}" fill-opacity="0.35" stroke="{col}">'
                f'<title>{esc(name)}: p50 {p50:.3f}s, p95 {p95:.3f}s, n={a.size}</title></rect>')
        svg.add(f'<line class="median" x1="{X(p50):.1f}" x2="{X(p50):.1f}" y1="{cy - 10:.1f}" y2="{cy + 10:.1f}" '
                f'stroke="#222" stroke-width="2"/>')
    return svg.done()


def chart_fields(df: pd.DataFrame, colors: dict[str, str]) -> str:
    """Per-field accuracy, grouped by field: shows which part of the answer each variant gets wrong."""
    fields = [c for c in df.columns if c.startswith("acc_")]
    rows = [r for _, r in df.iterrows() if as_float(r.get("accuracy")) is not None]
    W, L, R, T, B = 640, 50, 20, 20, 60
    H = 300
    svg = Svg("chart-fields", W, H, "Accuracy per field of the answer")
    if not fields or not rows:
        svg.text(W / 2, H / 2, "no per-field scores (the expected answers are not JSON objects)", "middle")
        return svg.done()
    pw, ph = W - L - R, H - T - B
    gw = pw / len(fields)
    bw = min(28.0, (gw - 12) / len(rows))

    def Y(v: float) -> float:
        return T + ph * (1 - v)

    _percent_axis(svg, L, pw, Y)
    svg.add(f'<line x1="{L}" x2="{L + pw}" y1="{T + ph}" y2="{T + ph}"/></g>')
    for fi, f in enumerate(fields):
        gx = L + gw * fi + (gw - bw * len(rows)) / 2
        svg.text(L + gw * fi + gw / 2, T + ph + 18, f.removeprefix("acc_"), "middle")
        for vi, r in enumerate(rows):
            v = as_float(r.get(f))
            if v is None:
                continue
            name = str(r["variant"])
            x = gx + bw * vi
            svg.add(f'<rect class="bar" data-variant="{esc(name)}" data-field="{esc(f)}" x="{x:.1f}" y="{Y(v):.1f}" '
                    f'width="{bw - 2:.1f}" height="{max(Y(0) - Y(v), 0.5):.1f}" fill="{colors.get(name, "#333")}">'
                    f'<title>{esc(name)} — {esc(f.removeprefix("acc_"))}: {pct(v)}</title></rect>')
    return svg.done()


def chart_diff(df: pd.DataFrame, baseline: str | None, colors: dict[str, str]) -> str:
    """Accuracy difference against the baseline with the paired-bootstrap interval: crossing zero means
    the data cannot tell the two apart."""
    rows = [(str(r["variant"]), as_float(r.get("accuracy_diff")), as_float(r.get("accuracy_diff_lo")),
             as_float(r.get("accuracy_diff_hi"))) for _, r in df.iterrows()]
    rows = [(n, d, lo if lo is not None else d, hi if hi is not None else d) for n, d, lo, hi in rows if d is not None]
    W, L, R, T, rowh = 640, 130, 30, 20, 30
    H = T + rowh * max(len(rows), 1) + 45
    svg = Svg("chart-diff", W, H, f"Accuracy difference vs {baseline} (paired, 95% interval)")
    if not rows:
        svg.text(W / 2, H / 2, "only one variant measured", "middle")
        return svg.done()
    pw = W - L - R
    m = max(max(abs(lo), abs(hi)) for _, _, lo, hi in rows) or 0.05
    xt = nice_ticks(-m, m, 6)
    x0, x1 = xt[0], xt[-1]

    def X(v: float) -> float:
        return L + pw * (v - x0) / (x1 - x0)

    base = T + rowh * len(rows)
    svg.add('<g class="axis">')
    for t in xt:
        svg.add(f'<line class="grid" x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{T}" y2="{base}"/>')
        svg.text(X(t), base + 16, pp(t, digits=0), "middle")
    svg.add(f'<line x1="{X(0):.1f}" x2="{X(0):.1f}" y1="{T}" y2="{base}" stroke="#666"/></g>')
    svg.text(L + pw / 2, H - 8, f"accuracy minus {baseline or 'baseline'}", "middle")
    for i, (name, d, lo, hi) in enumerate(rows):
        cy = T + rowh * i + rowh / 2
        col = colors.get(name, "#333")
        svg.text(L - 8, cy + 4, name, "end")
        svg.add(f'<line class="errorbar" x1="{X(lo):.1f}" x2="{X(hi):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                f'stroke="{col}" stroke-width="2"/>')
        svg.add(f'<circle class="diff-point" cx="{X(d):.1f}" cy="{cy:.1f}" r="5" fill="{col}">'
                f'<title>{esc(name)}: {pp(d)} {interval(lo, hi, diff=True)}</title></circle>')
    return svg.done()


def html_table(df: pd.DataFrame, columns: list[tuple[str, str]], table_id: str) -> str:
    present = [(c, h) for c, h in columns if c in df.columns]
    units = column_units(df.columns)
    out = [f'<div class="scroll"><table id="{table_id}"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for _, h in present)
           + "</tr></thead><tbody>"]
    # the columns that name a variant, which a skipped one still fills (variant, model)
    names = next((i for i, (c, _) in enumerate(present) if c not in ("variant", "model_id")), len(present))
    for _, row in df.iterrows():
        skipped = str(row.get("status", "ok")).startswith("skipped")
        tds = []
        for i, (c, _) in enumerate(present):
            if skipped and i >= names:
                # One wrapping cell for the reason, so a long path does not stretch every column.
                tds.append(f'<td class="skipped" colspan="{len(present) - names}">{esc(row.get("status"))}</td>')
                break
            # the variant cell carries its status where it is incomplete, as in the markdown tables
            text = cell(row, c, units[c]) if c not in ("model_id", "vs_variant") else str(row.get(c) or "-")
            cls = ' class="num"' if c not in ("variant", "model_id", "vs_variant", "cost_note", "status") else ""
            tds.append(f"<td{cls}>{esc(text)}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def items_table(analysis: Analysis, order: list[str]) -> tuple[str, int, int]:
    """Per-item outputs of every variant (first repeat), escaped. Items where the variants disagree come
    first, since those are the ones worth reading; capped at MAX_ITEM_ROWS rows."""
    first = first_records(analysis.records)
    expected: dict[str, Any] = {}
    for r in analysis.records:
        expected.setdefault(r.item_id, r.expected)
    ids = list(expected)
    if not ids:
        return "<p class='note'>no records</p>", 0, 0

    def rank(item_id: str) -> int:
        states = {primary_value(first[(v, item_id)]) for v in order
                  if (v, item_id) in first and first[(v, item_id)].error is None}
        return 0 if len(states) > 1 else (1 if states == {0.0} else 2)

    ids.sort(key=rank)
    shown = ids[:MAX_ITEM_ROWS]
    head = "<tr><th>item</th><th>expected</th>" + "".join(f"<th>{esc(v)}</th>" for v in order) + "</tr>"
    rows = []
    for item_id in shown:
        tds = [f"<td>{esc(item_id)}</td>", f"<td><pre>{esc(_short(json.dumps(expected[item_id], ensure_ascii=False)))}</pre></td>"]
        for v in order:
            r = first.get((v, item_id))
            if r is None:
                tds.append("<td>-</td>")
            elif r.error is not None:
                tds.append(f'<td class="err"><pre>error ({esc(r.error_kind)}): {esc(_short(r.error))}</pre></td>')
            else:
                score = primary_value(r)
                cls = "ok" if score == 1.0 else "bad" if score == 0.0 else "part"
                tip = "" if score in (0.0, 1.0) else f' title="{"unknown" if score is None else f"{score:.2f}"}"'
                tds.append(f'<td class="{cls}"{tip}><pre>{esc(_short(r.raw_text or ""))}</pre></td>')
        rows.append("<tr>" + "".join(tds) + "</tr>")
    table = (f'<div class="scroll"><table id="items"><thead>{head}</thead><tbody>' + "\n".join(rows)
             + "</tbody></table></div>")
    return table, len(shown), len(ids)


def _short(s: str) -> str:
    return s if len(s) <= MAX_OUTPUT_CHARS else s[:MAX_OUTPUT_CHARS] + "…"


def render_html(analysis: Analysis, eco: Economics, plan: list[str] | None = None) -> str:
    """The whole page: header, decision summary, results, charts, cost, economics, items and method."""
    m, df = analysis.manifest, analysis.df
    ev = m.evalset
    ran = measured(df)
    order = [str(v) for v in ran["variant"]]
    colors = _colors([str(v) for v in df["variant"]])
    legend = '<p class="legend">' + "".join(
        f'<span><i style="background:{colors[v]}"></i>{esc(v)}</span>' for v in order) + "</p>"
    paired = ran[ran["paired_n"].notna()]
    items_html, shown, total = items_table(analysis, order)
    extra = extra_columns(df)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(m.name or 'Run')} — evaluation report</title>", f"<style>{CSS}</style></head><body>",
        f"<h1>{esc(m.name or 'Run')}: is fine-tuning worth it?</h1>",
        f'<p class="meta">Run <code>{esc(m.run_id)}</code> on eval set <code>{esc(ev.name)}</code> '
        f"({esc(ev.test_items)} test items, {esc(ev.train_items)} training examples, hash "
        f"<code>{esc(str(ev.content_hash)[:12])}</code>), status <b>{esc(m.status)}</b>, finished "
        f"{esc(m.finished_at)}, harness {esc(m.harness_version)} "
        f"(git {esc(m.git_revision or 'unknown')}).</p>",
        *([f'<p class="meta"><b>{esc(note)}</b></p>'] if (note := split_note(m)) else []),
        '<h2>Decision summary</h2><ul class="summary">'
        + "".join(f"<li>{esc(s)}</li>" for s in parity_lines(df) + decision_lines(eco, analysis.df))
        + "</ul>",
        "<h2>Results</h2>", html_table(df, with_primary_heading(m, display_columns(df)), "results"),
        "<h2>Accuracy vs cost per request</h2>", legend, chart_accuracy_cost(ran, colors),
    ]
    if len(paired):
        parts += [f"<h2>Paired comparison against {esc(analysis.baseline)}</h2>",
                  chart_diff(ran, analysis.baseline, colors), html_table(paired, PAIRED_DISPLAY, "paired")]
        note = paired_note(paired)
        parts += [f'<p class="note">{esc(note)}</p>'] if note else []
    parts += _agreement(df)
    parts += plan_html(plan)  # report.md's plan section (harness.report.plan_text), when plan.json is there
    parts += _scores(m, df, ran, analysis.agreement)
    parts += _cost_and_economics(ran, analysis.config.get("monthly_requests"), eco)
    parts += ["<h2>Latency</h2>", chart_latency(analysis.frame, order, colors),
              "<h2>Per-field accuracy</h2>", chart_fields(ran, colors)]
    if extra:
        parts.append(html_table(ran, [("variant", "variant")] + [(c, c) for c in extra], "fields"))
    if has_repeats(ran):
        parts += ["<h2>Repeats</h2>", html_table(ran, REPEAT_DISPLAY, "repeats")]
    notes = variant_notes(m, df)
    if notes:
        parts += ["<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n.removeprefix('- ').replace('**', ''))}</li>"
                                                 for n in notes) + "</ul>"]
    parts += [f"<h2>Outputs per item</h2><p class='note'>{shown} of {total} items shown (items where the variants "
              "disagree first; first repeat of each); every record is in records.jsonl, and <code>harness view</code> "
              "on this run folder shows every item with its prompt, scores and judge reasoning.</p>", items_html,
              "<h2>Method</h2><ul>" + "".join(f"<li>{esc(n.replace('*', ''))}</li>" for n in METHOD_NOTES) + "</ul>",
              "</body></html>"]
    return "\n".join(parts)


def _agreement(df: pd.DataFrame) -> list[str]:
    """The agreement section (harness.report.parity) as HTML: its heading, notes and paired table."""
    lines = agreement_section(df, lambda rows, cols: html_table(rows, cols, "agreement"))
    if not lines:
        return []
    notes = [x for x in lines[1:] if x.startswith("- ")]
    tables = [x for x in lines[1:] if x.startswith("<div")]
    return ([f"<h2>{esc(lines[0].removeprefix('## '))}</h2>", "<ul>" + "".join(
        f"<li>{esc(n.removeprefix('- ').replace('**', ''))}</li>" for n in notes) + "</ul>", *tables])


def _scores(m: Manifest, df: pd.DataFrame, ran: pd.DataFrame, agreement: list[dict[str, Any]]) -> list[str]:
    """A column and a line per named scorer; the judge's evaluation cost and its agreement with people."""
    cols = score_columns(m, df)
    judge = judge_lines(m, df, agreement)
    if not (cols or judge):
        return []
    parts = ["<h2>Scores</h2>"]
    if cols:
        parts.append(html_table(ran, [("variant", "variant")] + cols, "scores"))
        parts.append("<ul>" + "".join(f"<li>{esc(x.removeprefix('- ').replace('**', ''))}</li>"
                                      for x in score_lines(m, df)) + "</ul>")
    if judge:
        parts.append('<h3>Judge</h3><ul id="judge">' + "".join(f"<li>{esc(x.removeprefix('- ').replace('**', ''))}</li>"
                                                             for x in judge) + "</ul>")
    return parts


def _cost_and_economics(ran: pd.DataFrame, monthly: int | None, eco: Economics) -> list[str]:
    projection = (f"Monthly projection at {monthly:,} requests a month. {projection_intervals(eco, monthly) or ''}"
                  if monthly else "Set monthly_requests in the config for a monthly projection.").strip()
    facts = training_facts(eco, lambda x: usd(x, trim=True))
    return ["<h2>Cost</h2>", html_table(ran, COST_DISPLAY + [("cost_note", "how")], "cost"),
            f'<p class="note">{projection}</p>',
            "<h2>Fine-tuning economics</h2>",
            '<table id="economics"><tbody>' + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                                                      for k, v in facts) + "</tbody></table>",
            f"<p>{esc(break_even_text(eco.break_even, eco.training, eco.monthly_requests))}</p>"]
