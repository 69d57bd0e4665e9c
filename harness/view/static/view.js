// harness view: the items list, its filters (each with its count), full-text search, sort, the URL that keeps
// them (so a link can be shared), and the gate's verdict on top. The list is virtual: only the rows on screen
// exist in the page, and their text is fetched for those rows only.

const ROW = 30;
const FILTERS = [
  ["all", "all items"], ["disagree", "variants disagree"], ["r2w", "right → wrong"], ["w2r", "wrong → right"],
  ["errors", "errors"], ["bad", "bad answers"], ["unknown", "unknown scores"], ["gate", "made the gate fail"],
];
const SORTS = [["id", "file order"], ["score", "score"], ["cost", "cost"], ["latency", "latency"],
  ["change", "score change A → B"]];
const S = {meta: null, ids: [], n: 0, cols: [], facets: [], filter: "all", a: "", b: "", q: "", hits: null,
  facet: "", value: "", sort: "id", sc: "", dir: "asc", item: null, list: [], snips: new Map(), gateSet: new Set(),
  defaults: {}, searchToken: 0, ui: {}};

const $ = (id) => document.getElementById(id);
const col = (key) => S.cols.find((c) => c.key === key) || null;
const known = (c, i) => (c.flags[i] & PRESENT) && !Number.isNaN(c.score[i]);
const right = (c, i) => c.score[i] > 0.5;  // pass/fail: the majority of repeats; graded: above one half

function toArray(values) { return Float64Array.from(values, (v) => (v == null ? NaN : v)); }

function setup(rows) {
  S.ids = rows.ids;
  S.n = rows.ids.length;
  const two = S.meta.runs.length > 1;
  S.cols = rows.columns.map((c) => ({...c, score: toArray(c.score), cost: toArray(c.cost), latency: toArray(c.latency),
    flags: Uint8Array.from(c.flags), label: c.variant + (c.run ? " (accepted)" : (two ? " (new)" : ""))}));
  // the list's badges: per variant, the accepted run's beside this run's
  const rank = new Map();
  for (const c of S.cols) if (!rank.has(c.variant)) rank.set(c.variant, rank.size);
  S.shown = S.cols.slice().sort((x, y) => rank.get(x.variant) - rank.get(y.variant) || y.run - x.run);
  $("left").classList.toggle("wide", S.shown.length <= 4);  // few columns: room for their names
  S.facets = rows.facets;
  const g = S.meta.gate;
  S.gateSet = new Set(g ? g.items : []);
  const main = S.cols.filter((c) => c.run === 0);
  let a = main[0], b = main[main.length - 1];
  if (two) {
    const gated = g && g.metrics.length ? g.metrics[0].variant : null;
    const shared = main.find((c) => c.variant === gated) || main.find((c) => col("1:" + c.variant)) || main[0];
    b = shared;
    a = col("1:" + shared.variant) || S.cols.find((c) => c.run === 1) || main[0];
  }
  S.defaults = {a: a.key, b: b.key, sc: b.key};
}

// -- the URL keeps the view ------------------------------------------------------------------------------

function params(withItem) {
  const p = new URLSearchParams();
  if (S.filter !== "all") p.set("f", S.filter);
  for (const k of ["a", "b", "sc"]) if (S[k] !== S.defaults[k]) p.set(k, S[k]);
  if (S.q) p.set("q", S.q);
  if (S.facet) { p.set("field", S.facet); p.set("value", S.value); }
  if (S.sort !== "id") p.set("sort", S.sort);
  if (S.dir !== "asc") p.set("dir", S.dir);
  if (withItem && S.item != null) p.set("item", S.item);
  return p;
}
function hashFor(itemId) { const p = params(false); p.set("item", itemId); return p.toString(); }
function writeHash() { history.replaceState(null, "", "#" + params(true).toString()); }

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  const pick = (v, ok, dflt) => (v != null && ok(v) ? v : dflt);
  S.filter = pick(p.get("f"), (v) => FILTERS.some(([k]) => k === v), "all");
  for (const k of ["a", "b", "sc"]) S[k] = pick(p.get(k), (v) => col(v) != null, S.defaults[k]);
  S.q = p.get("q") || "";
  const facet = S.facets.find((f) => f.name === p.get("field"));
  S.facet = facet ? facet.name : "";
  S.value = facet && facet.values.includes(p.get("value")) ? p.get("value") : "";
  S.sort = pick(p.get("sort"), (v) => SORTS.some(([k]) => k === v), "id");
  S.dir = p.get("dir") === "desc" ? "desc" : "asc";
  S.item = p.get("item");
}

// -- filters, counts, sort -------------------------------------------------------------------------------

function anyFlag(bits) {
  return (i) => S.cols.some((c) => (c.flags[i] & bits) !== 0);
}

function predicate(name) {
  const A = col(S.a), B = col(S.b), main = S.cols.filter((c) => c.run === 0);
  switch (name) {
    case "disagree": return (i) => {
      let r = false, w = false;
      for (const c of main) if (known(c, i)) { if (right(c, i)) r = true; else w = true; }
      return r && w;
    };
    case "r2w": case "w2r": {
      if (!A || !B || A === B) return () => false;
      const graded = A.graded || B.graded, up = name === "w2r";
      return (i) => known(A, i) && known(B, i) && (graded ? (up ? B.score[i] > A.score[i] : B.score[i] < A.score[i])
        : (up ? !right(A, i) && right(B, i) : right(A, i) && !right(B, i)));
    }
    case "errors": return anyFlag(ERROR);
    case "bad": return anyFlag(INVALID | ISSUE);
    case "unknown": return anyFlag(UNKNOWN);
    case "gate": return (i) => S.gateSet.has(i);
    default: return () => true;
  }
}

function facetPredicate() {
  const f = S.facets.find((x) => x.name === S.facet);
  if (!f || S.value === "") return () => true;
  const v = f.values.indexOf(S.value);
  return (i) => f.idx[i] === v;
}

function sortList() {
  if (S.sort === "id") { if (S.dir === "desc") S.list.reverse(); return; }
  let arr;
  if (S.sort === "change") {
    const A = col(S.a), B = col(S.b);
    arr = new Float64Array(S.n);
    for (const i of S.list) arr[i] = B.score[i] - A.score[i];
  } else {
    arr = col(S.sc)[S.sort];
  }
  const dir = S.dir === "desc" ? -1 : 1;
  S.list.sort((x, y) => {
    const a = arr[x], b = arr[y], an = Number.isNaN(a), bn = Number.isNaN(b);
    if (an || bn) return an - bn || x - y;  // unknown values last, either way
    return (a - b) * dir || x - y;
  });
}

function recompute() {
  const inFacet = facetPredicate();
  const base = [];
  for (let i = 0; i < S.n; i++) if ((!S.hits || S.hits[i]) && inFacet(i)) base.push(i);
  const counts = {};
  for (const [name] of FILTERS) {
    const p = predicate(name);
    let n = 0;
    for (const i of base) if (p(i)) n++;
    counts[name] = n;
  }
  const p = predicate(S.filter);
  S.list = base.filter(p);
  sortList();
  updateBar(counts);
  renderList();
  writeHash();
}

async function runSearch() {
  const token = ++S.searchToken;
  if (!S.q.trim()) { S.hits = null; return; }
  const found = await source.search(S.q);
  if (token !== S.searchToken) return;
  S.hits = new Uint8Array(S.n);
  for (const i of found) S.hits[i] = 1;
}

// -- the toolbar -----------------------------------------------------------------------------------------

function select(id, options, value, onchange) {
  const s = el("select", {id, onchange: () => onchange(s.value)},
    options.map(([v, label]) => el("option", {value: v}, label)));
  s.value = value;
  return s;
}

function fillValues() {
  const f = S.facets.find((x) => x.name === S.facet);
  const box = clear(S.ui.value);
  box.append(el("option", {value: ""}, f ? "any value" : "-"));
  if (f) for (const v of f.values) box.append(el("option", {value: v}, v));
  box.value = S.value;
  box.disabled = !f;
}

function buildBar() {
  const bar = clear($("bar"));
  const colOpts = S.cols.map((c) => [c.key, c.label]);
  const filters = el("div", {class: "filters"});
  S.ui.buttons = {};
  S.ui.counts = {};
  for (const [name, label] of FILTERS) {
    if (name === "gate" && !S.meta.gate) continue;
    S.ui.counts[name] = el("span", {class: "count"});
    S.ui.buttons[name] = el("button", {class: "filter", "data-filter": name,
      onclick: () => { S.filter = name; recompute(); }}, label + " ", S.ui.counts[name]);
    filters.append(S.ui.buttons[name]);
  }
  const search = el("input", {id: "search", type: "search", placeholder: "search inputs and answers", value: S.q});
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => { S.q = search.value; await runSearch(); recompute(); }, 250);
  });
  const facetOpts = [["", "any field"], ...S.facets.map((f) => [f.name, f.name])];
  S.ui.value = el("select", {id: "value", onchange: () => { S.value = S.ui.value.value; recompute(); }});
  S.ui.shown = el("span", {id: "shown"});
  bar.append(filters, el("div", {class: "controls"},
    el("label", {}, "A ", select("pick-a", colOpts, S.a, (v) => { S.a = v; recompute(); })),
    el("label", {}, "→ B ", select("pick-b", colOpts, S.b, (v) => { S.b = v; recompute(); })),
    el("label", {}, "field ", select("field", facetOpts, S.facet, (v) => { S.facet = v; S.value = ""; fillValues(); recompute(); })),
    el("label", {}, "= ", S.ui.value), search,
    el("label", {}, "sort ", select("sort", SORTS, S.sort, (v) => { S.sort = v; recompute(); })),
    el("label", {}, "of ", select("sort-col", colOpts, S.sc, (v) => { S.sc = v; recompute(); })),
    el("button", {id: "dir", onclick: (e) => { S.dir = S.dir === "asc" ? "desc" : "asc"; e.target.textContent = S.dir; recompute(); }}, S.dir),
    S.ui.shown));
  fillValues();
}

function updateBar(counts) {
  for (const [name, btn] of Object.entries(S.ui.buttons)) {
    S.ui.counts[name].textContent = String(counts[name]);
    btn.classList.toggle("active", name === S.filter);
  }
  S.ui.shown.textContent = `${S.list.length} of ${S.n} items`;
}

// -- the virtual list ------------------------------------------------------------------------------------

function cellBadge(c, i) {
  const f = c.flags[i];
  if (!(f & PRESENT)) return el("span", {class: "b miss", title: c.label + ": no record"}, "–");
  if (f & ERROR) return el("span", {class: "b err", title: c.label + ": error"}, "err");
  const s = c.score[i];
  const cls = Number.isNaN(s) ? "unk" : (right(c, i) ? "ok" : "bad") + (f & (INVALID | ISSUE) ? " inv" : "");
  return el("span", {class: "b " + cls, title: c.label}, Number.isNaN(s) ? "?" : fmtScore(s));
}

function rowEl(i, k) {
  const sn = S.snips.get(i);
  const row = el("div", {class: "row" + (S.ids[i] === S.item ? " selected" : ""), "data-i": i,
    onclick: () => openItem(i)},
  el("span", {class: "id"}, S.ids[i]), el("span", {class: "snip"}, sn ? sn[0] : "…"),
  el("span", {class: "badges"}, S.shown.map((c) => cellBadge(c, i))));
  row.style.top = k * ROW + "px";
  return row;
}

let pending = null;
function paintRows() {
  const box = $("list"), rows = clear($("rows"));
  const first = Math.max(0, Math.floor(box.scrollTop / ROW) - 5);
  const last = Math.min(S.list.length, Math.ceil((box.scrollTop + box.clientHeight) / ROW) + 5);
  const need = [];
  for (let k = first; k < last; k++) {
    const i = S.list[k];
    rows.append(rowEl(i, k));
    if (!S.snips.has(i)) need.push(i);
  }
  if (need.length && !pending) {
    pending = source.snippets(need).then((got) => {
      need.forEach((i, n) => S.snips.set(i, got[n]));
      pending = null;
      paintRows();
    });
  }
}

function headBadges() {
  if (S.meta.runs.length < 2) return S.shown.map((c) => el("span", {class: "b head", title: c.label}, c.variant));
  const groups = new Map();
  for (const c of S.shown) {
    if (!groups.has(c.variant)) groups.set(c.variant, []);
    groups.get(c.variant).push(el("span", {class: "b head", title: c.label}, c.run ? "acc." : "new"));
  }
  return [...groups].map(([name, kids]) => el("span", {class: "group"}, el("span", {class: "gname", title: name}, name),
    el("span", {class: "gcols"}, kids)));
}

function renderList() {
  $("spacer").style.height = S.list.length * ROW + "px";
  const head = clear($("list-head"));
  head.append(el("span", {class: "id"}, "item"), el("span", {class: "snip"}, "input"),
    el("span", {class: "badges"}, headBadges()));
  paintRows();
}

async function openItem(i) {
  S.item = S.ids[i];
  writeHash();
  for (const r of document.querySelectorAll(".row")) r.classList.toggle("selected", Number(r.dataset.i) === i);
  const d = await source.item(i);
  renderDetail($("detail"), d, S.meta, S.cols, (col(S.b) || {}).variant);
}

function moveSelection(step) {
  const at = S.list.findIndex((i) => S.ids[i] === S.item);
  const k = Math.min(S.list.length - 1, Math.max(0, at + step));
  if (k < 0 || k >= S.list.length) return;
  const box = $("list");
  if (k * ROW < box.scrollTop || (k + 1) * ROW > box.scrollTop + box.clientHeight) box.scrollTop = k * ROW - box.clientHeight / 2;
  openItem(S.list[k]);
}

// -- the header: the runs and the gate -------------------------------------------------------------------

function gateBox(g) {
  const cls = g.failed ? "gate fail" : (g.ran ? "gate ok" : "gate none");
  const metrics = g.metrics.map((m) => el("li", {class: m.failed ? "failed" : null},
    `${m.variant} ${m.metric}: ${fmtPct(m.old)} → ${fmtPct(m.new)}: ${m.reason}`));
  const button = g.items.length ? el("button", {id: "gate-items", onclick: () => { S.filter = "gate"; recompute(); }},
    `list the ${g.items.length} items that made it fail`) : null;
  return el("div", {class: cls, id: "gate"}, el("b", {}, "gate: " + g.verdict), " ", button,
    g.rule ? el("p", {class: "rule"}, "rule: " + g.rule) : null,
    g.incomplete ? el("p", {class: "problem"}, g.incomplete) : null,
    g.warnings.map((w) => el("p", {class: "note"}, "warning: " + w)), el("ul", {}, metrics));
}

function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

function renderTop() {
  const top = clear($("top"));
  const [run, acc] = S.meta.runs;
  top.append(el("h1", {}, "harness view: ", run.name, acc ? el("span", {class: "vs"}, " against accepted ", acc.name) : null),
    el("p", {class: "meta"}, `${S.n} items, ${plural(S.cols.filter((c) => c.run === 0).length, "variant")}, eval set ${run.evalset}, ` +
      `status ${run.status}, primary score ${run.primary}` + (acc ? `; accepted run status ${acc.status}` : "")));
  if (S.meta.gate) top.append(gateBox(S.meta.gate));
}

async function init() {
  try {
    const [meta, rows] = await Promise.all([source.meta(), source.rows()]);
    S.meta = meta;
    setup(rows);
    readHash();
    renderTop();
    buildBar();
    $("list").addEventListener("scroll", () => requestAnimationFrame(paintRows));
    window.addEventListener("resize", () => paintRows());
    $("list").addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown" || e.key === "j") { e.preventDefault(); moveSelection(1); }
      if (e.key === "ArrowUp" || e.key === "k") { e.preventDefault(); moveSelection(-1); }
    });
    window.addEventListener("hashchange", async () => { readHash(); buildBar(); await runSearch(); recompute(); openFromHash(); });
    if (S.q) await runSearch();
    recompute();
    openFromHash();
    document.body.setAttribute("data-ready", "1");  // the tests and the benchmark wait for this
  } catch (err) {
    clear($("top")).append(el("p", {class: "problem"}, "harness view could not load the run: " + err.message));
  }
}

function openFromHash() {
  if (S.item == null) return;
  const i = S.ids.indexOf(S.item);
  if (i >= 0) openItem(i);
}

init();
