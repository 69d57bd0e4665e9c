// harness view: one item in full. Its input and expected answer, then per variant the record of each run side
// by side (accepted | this run): the answer, its scores with their explanations, the judge's verdict and
// reasoning, what the call cost and took, and the messages actually sent.

function pre(v, cls) { return el("pre", {class: cls || null}, txt(v)); }

function section(title, ...kids) { return el("section", {class: "part"}, el("h3", {}, title), ...kids); }

function inputView(d, meta) {
  const kids = [];
  if (d.turns) {
    for (const t of d.turns) kids.push(el("div", {class: "turn " + t.role}, el("span", {class: "role"}, t.role), pre(t.content)));
  } else if (d.input && typeof d.input === "object") {
    const dl = el("dl", {class: "fields"});
    for (const [k, v] of Object.entries(d.input)) dl.append(el("dt", {}, k), el("dd", {}, pre(show(v))));
    kids.push(dl);
  } else {
    kids.push(pre(show(d.input)));
  }
  if (d.input_source !== "evalset") kids.push(el("p", {class: "note"}, meta.runs[0].input_note || "input as the variant sent it"));
  return section("Input", ...kids);
}

function badge(r) {
  if (r.error) return el("span", {class: "badge err"}, "error");
  const s = r.primary;
  const cls = s == null ? "unk" : (s > 0.5 ? "ok" : "bad");
  return el("span", {class: "badge " + cls, title: "the primary score"}, "score " + fmtScore(s));
}

function factsLine(r) {
  const u = r.usage || {};
  const parts = [
    "cost " + fmtMoney(r.cost), r.eval_cost != null ? "evaluation cost " + fmtMoney(r.eval_cost) : null,
    "latency " + fmtSecs(r.latency), "attempts " + r.attempts, r.cache_hit ? "cache hit" : "not cached",
    "finish " + (r.finish_reason || "-"), r.usage ? `tokens ${u.prompt_tokens} in, ${u.completion_tokens} out` : "tokens unknown",
    r.model_id,
  ];
  return el("p", {class: "facts"}, parts.filter((x) => x != null).join(" · "));
}

function scoresView(r, other) {
  if (!r.scores.length) return null;
  const before = new Map((other ? other.scores : []).map((s) => [s.name, s.value]));
  const chips = r.scores.map((s) => {
    const changed = other && before.has(s.name) && before.get(s.name) !== s.value;
    const value = typeof s.value === "boolean" ? String(s.value) : fmtScore(s.value);
    const neg = s.value === false || s.value === 0 ? " neg" : (s.value == null ? " unk" : "");
    return el("span", {class: "chip" + neg + (changed ? " changed" : ""), title: s.explanation || s.name},
      `${s.name} ${value}`, changed ? el("span", {class: "was"}, ` (was ${show(before.get(s.name))})`) : null);
  });
  const why = r.scores.filter((s) => s.explanation).map((s) => el("p", {class: "expl"}, el("b", {}, s.name + ": "), s.explanation));
  return el("div", {class: "scores"}, el("div", {class: "chips"}, chips), why);
}

function judgeView(j) {
  const head = `judge ${j.name}: ` + (j.score_raw != null ? `verdict ${show(j.score_raw)}` : "no verdict") +
    (j.score != null ? ` (score ${fmtScore(j.score)})` : "") + (j.judge_model ? ` by ${j.judge_model}` : "") +
    (j.cost_usd != null ? `, ${fmtMoney(j.cost_usd)}` : "") + (j.cache_hit ? ", cached" : "");
  const prompt = j.prompt ? el("details", {}, el("summary", {}, "the judge's prompt"),
    j.prompt.map((m) => el("div", {class: "msg"}, el("span", {class: "role"}, m.role), pre(m.content)))) : null;
  return el("div", {class: "judge"}, el("b", {}, head),
    j.reasoning ? pre(j.reasoning, "reasoning") : el("p", {class: "note"}, j.explanation || j.error || "no reasoning"),
    prompt);
}

function messagesView(r) {
  const kids = r.messages.map((m) => {
    const chunks = (m.chunks || []).map((c) => el("div", {class: "chunk"},
      el("span", {class: "label"}, `retrieved chunk ${c.rank}: doc ${c.doc_id} (doc rank ${c.doc_rank})`), pre(c.text)));
    return el("div", {class: "msg " + m.part}, el("span", {class: "label"}, m.label), chunks, pre(m.content));
  });
  const settings = Object.entries(r.settings || {}).map(([k, v]) => `${k}=${show(v)}`).join(", ");
  const ids = [];
  if (r.shot_ids) ids.push("few-shot examples: " + r.shot_ids.join(", "));
  if (r.retrieved_doc_ids) ids.push("retrieved docs, by rank: " + r.retrieved_doc_ids.join(", "));
  return el("details", {class: "sent"}, el("summary", {}, `messages sent (${r.messages.length})`),
    el("p", {class: "note"}, settings), ids.map((x) => el("p", {class: "note"}, x)), kids);
}

function recordView(r, other) {
  const problems = [];
  if (r.error) problems.push(el("p", {class: "problem"}, `error (${r.error_kind}): `, txt(r.error)));
  if (r.issue) problems.push(el("p", {class: "problem"}, "answer issue: ", r.issue));
  const valid = r.format_valid == null ? "" : (r.format_valid ? "valid format" : "INVALID format");
  const parsed = r.parsed != null && show(r.parsed) !== txt(r.raw) ?
    el("details", {}, el("summary", {}, "parsed answer"), pre(show(r.parsed))) : null;
  return el("div", {class: "record"},
    el("div", {class: "status"}, badge(r), " ", el("span", {class: r.format_valid === false ? "bad-text" : ""}, valid),
      r.repeat ? ` repeat ${r.repeat}` : ""),
    problems, el("div", {class: "answer-label"}, "answer"),
    pre(r.raw == null || (r.raw === "" && r.tool_calls) ? (r.tool_calls ? "(tool calls only)" : "(no answer)") : r.raw, "answer"),
    r.tool_calls ? [el("div", {class: "answer-label"}, "tool calls"), pre(r.tool_calls, "answer")] : null, parsed,
    factsLine(r), scoresView(r, other), r.judges.map(judgeView), messagesView(r));
}

function changesLine(oldR, newR) {
  if (!oldR || !newR) return null;
  const before = new Map(oldR.scores.map((s) => [s.name, s.value]));
  const changed = newR.scores.filter((s) => before.has(s.name) && before.get(s.name) !== s.value)
    .map((s) => `${s.name} ${show(before.get(s.name))} → ${show(s.value)}`);
  const same = txt(oldR.raw) === txt(newR.raw);
  return el("p", {class: "changes"}, (same ? "same answer" : "the answer changed") + "; " +
    (changed.length ? "scores changed: " + changed.join(", ") : "no score changed"));
}

function variantBlock(name, pairs, meta) {
  // pairs: [[run index, records or null], ...]; the accepted run (1) on the left, this run (0) on the right
  const sides = pairs.slice().sort((x, y) => y[0] - x[0]);
  const cols = sides.map(([run, recs]) => {
    const label = el("div", {class: "side-label"}, run ? "accepted: " + meta.runs[1].name : "this run: " + meta.runs[0].name);
    if (!recs) return el("div", {class: "side"}, label, el("p", {class: "note"}, "no record of this item"));
    const other = sides.length > 1 && run === 0 ? (sides[0][1] || [])[0] : null;
    const rest = recs.slice(1).map((r) => el("details", {}, el("summary", {}, `repeat ${r.repeat}`), recordView(r)));
    return el("div", {class: "side"}, label, recordView(recs[0], other), rest);
  });
  const change = sides.length > 1 ? changesLine((sides[0][1] || [])[0], (sides[1][1] || [])[0]) : null;
  return el("section", {class: "variant"}, el("h3", {}, name), change,
    el("div", {class: sides.length > 1 ? "sides two" : "sides"}, cols));
}

function renderDetail(box, d, meta, columns, first) {
  clear(box);
  const link = el("a", {href: "#" + hashFor(d.id), class: "permalink", title: "a link to this item with these filters"}, "link");
  box.append(el("h2", {}, "Item ", d.id, " ", link), inputView(d, meta),
    section("Expected answer", pre(show(d.expected))));
  if (d.metadata && Object.keys(d.metadata).length) {
    box.append(el("details", {class: "part"}, el("summary", {}, "metadata"), pre(show(d.metadata))));
  }
  const byVariant = new Map();
  columns.forEach((c, n) => {
    if (!byVariant.has(c.variant)) byVariant.set(c.variant, []);
    byVariant.get(c.variant).push([c.run, d.cols[n]]);
  });
  const names = [...byVariant.keys()].sort((x, y) => (y === first) - (x === first));  // the variant compared first
  for (const name of names) box.append(variantBlock(name, byVariant.get(name), meta));
  box.scrollTop = 0;
}
