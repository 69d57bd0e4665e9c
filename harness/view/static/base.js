// harness view: DOM helpers and the two data sources (the local server, or the data embedded by --out).
// Every string from a run (inputs, answers, explanations) reaches the page through textContent or a text node:
// never through innerHTML.

const ERROR = 1, INVALID = 2, ISSUE = 4, UNKNOWN = 8, CACHE = 16, PRESENT = 32;
let STRINGS = [];  // --out: long texts stored once, referred to by number

function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function txt(v) { return typeof v === "number" ? STRINGS[v] : (v == null ? "" : String(v)); }
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
function show(v) {
  if (v == null) return "";
  return typeof v === "string" ? v : JSON.stringify(v, null, 2);
}
function fmtScore(x) { return x == null ? "?" : (x === 0 || x === 1 ? String(x) : x.toFixed(2)); }
function fmtMoney(x) { return x == null ? "-" : "$" + (x >= 0.01 ? x.toFixed(4) : x.toPrecision(3)); }
function fmtSecs(x) { return x == null ? "-" : (x < 10 ? x.toFixed(2) : x.toFixed(1)) + " s"; }
function fmtPct(x) { return x == null ? "-" : (100 * x).toFixed(1) + "%"; }

function serverSource() {
  const get = async (path) => {
    const r = await fetch(path, {headers: {Accept: "application/json"}});
    if (!r.ok) throw new Error(path.split("?")[0] + ": HTTP " + r.status + " " + (await r.text()));
    return r.json();
  };
  return {
    meta: () => get("api/meta"),
    rows: () => get("api/rows"),
    snippets: (idx) => get("api/snippets?i=" + idx.join(",")),
    search: (q) => get("api/search?q=" + encodeURIComponent(q)),
    item: (i) => get("api/item?i=" + i),
  };
}

function staticSource() {
  const block = (id) => document.getElementById(id).textContent;
  const json = (id) => JSON.parse(block(id));
  let snips = null, texts = null, items = null, starts = null;
  STRINGS = json("data-strings");
  return {
    meta: async () => json("data-meta"),
    rows: async () => json("data-rows"),
    snippets: async (idx) => { snips = snips || json("data-snips"); return idx.map((i) => snips[i]); },
    search: async (q) => {
      texts = texts || json("data-search");
      const words = q.toLowerCase().split(/\s+/).filter(Boolean);
      const out = [];
      for (let i = 0; i < texts.length; i++) if (words.every((w) => texts[i].includes(w))) out.push(i);
      return out;
    },
    item: async (i) => {
      if (!items) {  // one JSON line per item, parsed only when opened
        items = block("data-items");
        starts = [0];
        for (let p = items.indexOf("\n"); p >= 0; p = items.indexOf("\n", p + 1)) starts.push(p + 1);
      }
      return JSON.parse(items.slice(starts[i], (starts[i + 1] || items.length + 1) - 1));
    },
  };
}

const source = document.getElementById("data-meta") ? staticSource() : serverSource();
