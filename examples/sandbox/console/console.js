// yilian console: reads the engine through the sandbox's own API (/api/v1/…);
// draws with plain DOM and SVG (no library, no CDN).
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
};
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
};

async function api(command, body) {
  const r = await fetch(`/api/v1/${command}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}) });
  const j = await r.json();
  if (j.status !== "success") throw new Error(`${command}: ${j.code} ${j.message}`);
  return j.data;
}

function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// Green (free) to red (full): the share of places taken.
function heat(share) {
  const h = Math.round(120 * (1 - Math.min(1, Math.max(0, share))));
  return `hsl(${h}, 70%, 82%)`;
}

async function drawHeatmap(today) {
  const days = [...Array(7).keys()].map((i) => addDays(today, i));
  const stats = await api("slot-statistics", { date_from: days[0], date_to: days[6] });
  const rows = new Map();
  for (const r of stats.rows) {
    if (r.kind === "bed") continue;
    const key = `${r.hospital_id} · ${r.department_id || "—"} · ${r.kind}`;
    if (!rows.has(key)) rows.set(key, new Map());
    rows.get(key).set(r.date, r);
  }
  const table = el("table", { class: "heat" });
  table.append(el("tr", {}, el("th", {}, "institution · department · kind"), ...days.map((d) => el("th", {}, d.slice(5)))));
  for (const [key, byDay] of [...rows.entries()].sort()) {
    const tr = el("tr", {}, el("th", { class: "row" }, key));
    for (const d of days) {
      const r = byDay.get(d);
      if (!r || !r.capacity) {
        tr.append(el("td", { class: "empty" }, "·"));
        continue;
      }
      const taken = r.capacity - r.remaining;
      const td = el("td", { class: "cell", title: `${taken}/${r.capacity} taken, ${r.remaining} left` }, `${taken}/${r.capacity}`);
      td.style.background = heat(taken / r.capacity);
      tr.append(td);
    }
    table.append(tr);
  }
  $("heatmap").replaceChildren(rows.size ? table : el("p", { class: "muted" }, "no slots in the next 7 days"));
}

const STATE_GROUPS = [
  ["referrals", "转诊 referrals"],
  ["exam_items", "检查 exam items"],
  ["consultations", "会诊 consultations"],
  ["lab_orders", "委托检验 lab orders"],
  ["specimens", "标本 specimens"],
];

function bars(title, counts) {
  const card = el("div", { class: "card" }, el("h3", {}, title));
  const entries = Object.entries(counts);
  const max = Math.max(1, ...entries.map(([, n]) => n));
  for (const [state, n] of entries) {
    const fill = el("span", { class: "fill" });
    fill.style.width = `${Math.max(2, (120 * n) / max)}px`;
    card.append(el("div", { class: "bar" }, el("span", { class: "label" }, state), fill, el("span", {}, String(n))));
  }
  if (!entries.length) card.append(el("p", { class: "muted" }, "none"));
  return card;
}

async function drawCounts() {
  const c = await api("case-counts", {});
  const cards = [];
  for (const [key, title] of STATE_GROUPS) {
    if (key === "referrals") {
      for (const [kind, states] of Object.entries(c.referrals)) cards.push(bars(`${title} · ${kind}`, states));
      if (!Object.keys(c.referrals).length) cards.push(bars(title, {}));
    } else {
      cards.push(bars(title, c[key]));
    }
  }
  $("counts").replaceChildren(...cards);
}

function lineChart(points) {
  const w = 280, h = 120, pad = 18;
  const s = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "line" });
  s.append(svg("line", { x1: pad, y1: h - pad, x2: w - 4, y2: h - pad, stroke: "#c5ced8" }));
  const vals = points.map((p) => p.value);
  const known = vals.filter((v) => v !== null && v !== undefined);
  const max = Math.max(1e-9, ...known);
  const x = (i) => pad + ((w - pad - 6) * i) / Math.max(1, points.length - 1);
  const y = (v) => h - pad - ((h - 2 * pad) * v) / max;
  let d = "";
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    d += `${d ? "L" : "M"}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
    s.append(svg("circle", { cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: 2.5, fill: "#12355b", class: "point" }));
  });
  if (d) s.prepend(svg("path", { d, fill: "none", stroke: "#3b7dd8", "stroke-width": 2, class: "series" }));
  const label = svg("text", { x: 2, y: 12, "font-size": 10, fill: "#7b8a99" });
  label.textContent = `max ${Number(max.toFixed(3))}`;
  s.append(label);
  return s;
}

async function drawIndicators(today) {
  const data = await api("indicators", { date_from: addDays(today, -13), date_to: today, series: "day" });
  const cards = [];
  for (const ind of data.indicators) {
    if (!ind.supported || !ind.series) continue;
    const card = el("div", { class: "card chart", "data-indicator": ind.id },
      el("h3", {}, `${ind.name_zh} · ${ind.name}`),
      el("div", {}, el("span", { class: "value" }, ind.value === null ? "—" : String(ind.value)),
        el("span", { class: "muted" }, ` ${ind.unit}` + (ind.denominator !== undefined ? ` (${ind.numerator}/${ind.denominator})` : ""))));
    card.append(lineChart(ind.series));
    cards.push(card);
  }
  $("charts").replaceChildren(...cards);
}

function eventItem(e) {
  const what = [e.booking_id, e.slot_id, e.data && (e.data.hospital_id || e.data.critical_id || e.data.referral_id)].filter(Boolean).join(" · ");
  return el("li", { class: "event" }, el("span", { class: "t" }, e.at || ""), el("span", { class: "k" }, e.type || e.kind || ""), el("span", {}, what));
}

// The outbox read (never acknowledged: the host's own consumer does that)
// every few seconds after the last event shown.
let lastSeq = 0;
async function drawEvents() {
  const page = await api("next-events", lastSeq ? { limit: 200, after: lastSeq } : { limit: 1000 });
  const list = $("eventlist");
  const fresh = lastSeq ? page.events : page.events.slice(-30);
  for (const e of fresh) list.prepend(eventItem(e));
  while (list.children.length > 200) list.lastChild.remove();
  if (page.events.length) lastSeq = page.events[page.events.length - 1].seq;
  if (!list.children.length) list.replaceChildren(el("li", { class: "muted" }, "no events yet"));
  else list.querySelectorAll("li.muted").forEach((x) => x.remove());
}

async function main() {
  const status = $("status");
  try {
    const info = await api("engine-info", {});
    const today = info.now.slice(0, 10);
    status.textContent = `${info.role || "engine"} · ${info.now}`;
    await Promise.all([drawHeatmap(today), drawCounts(), drawIndicators(today), drawEvents()]);
    document.body.dataset.ready = "true";
    setInterval(() => drawEvents().catch(fail), 3000);
    setInterval(() => { drawHeatmap(today).catch(fail); drawCounts().catch(fail); }, 10000);
  } catch (e) {
    fail(e);
  }
}

function fail(e) {
  const status = $("status");
  status.textContent = `cannot read the engine: ${e.message} (with --keys every API call must be signed; run the console against a server without --keys, or behind a signing proxy)`;
  status.className = "error";
  document.body.dataset.ready = "error";
}

main();
