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

// --out: every block but the small meta is gzip + base64, in chunks of items, unpacked only when needed
// (DecompressionStream: any current browser; nothing is fetched).
async function gunzip(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).text();
}

function staticSource() {
  const block = (id) => document.getElementById(id).textContent;
  const packs = {}, unpacked = new Map();
  const lines = (id, n) => {  // the lines of chunk n of a block; the last few chunks stay unpacked
    const key = id + ":" + n;
    if (!unpacked.has(key)) {
      packs[id] = packs[id] || JSON.parse(block(id));
      unpacked.set(key, gunzip(packs[id][n]).then((t) => t.split("\n")));
      if (unpacked.size > 8) unpacked.delete(unpacked.keys().next().value);
    }
    return unpacked.get(key);
  };
  const meta = JSON.parse(block("data-meta"));
  const per = meta.chunk;
  const strings = async () => { if (!STRINGS.length) STRINGS = JSON.parse((await lines("data-strings", 0))[0]); };
  return {
    meta: async () => meta,
    rows: async () => JSON.parse((await lines("data-rows", 0))[0]),
    snippets: async (idx) => {
      const out = [];
      for (const i of idx) out.push(JSON.parse((await lines("data-snips", Math.floor(i / per)))[i % per]));
      return out;
    },
    search: async (q) => {
      const texts = await lines("data-search", 0);
      const words = q.toLowerCase().split(/\s+/).filter(Boolean);
      const out = [];
      for (let i = 0; i < texts.length; i++) if (words.every((w) => texts[i].includes(w))) out.push(i);
      return out;
    },
    item: async (i) => {
      await strings();
      return JSON.parse((await lines("data-items", Math.floor(i / per)))[i % per]);
    },
  };
}

const source = document.getElementById("data-meta") ? staticSource() : serverSource();
