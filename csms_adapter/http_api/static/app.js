// depotctl dashboard: one GET for the initial state and the recent history, then server-sent `state` events.
// Plain DOM, no framework, no CDN: the controller may run on a depot network without internet access.
"use strict";

const HISTORY_HOURS = 3;
const AHEAD_MAX_H = 12;
const history = [];   // {time: Date, power, limit}, oldest first
let timeZone = undefined;

// ------------------------------------------------------------------------------------------ helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));  // text, never HTML: ids come from chargers
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

const num = (v, digits = 1) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));
const pct = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 100)} %`);

function clock(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", timeZone});
}

function bar(fraction, cls) {
  const f = Math.max(0, Math.min(1, fraction || 0));
  return el("span", {class: `bar ${cls || ""}`}, el("i", {style: `width:${(f * 100).toFixed(1)}%`}));
}

// ------------------------------------------------------------------------------------------ header

function renderStatus(st) {
  timeZone = st.timezone;
  document.getElementById("site-name").textContent = `depotctl · ${st.site}`;
  const power = document.getElementById("site-power");
  power.textContent = num(st.site_power_kw);
  power.dataset.value = st.site_power_kw;
  power.classList.toggle("over", st.site_power_kw > st.grid_limit_kw + 0.05);
  const limit = document.getElementById("grid-limit");
  limit.textContent = num(st.grid_limit_kw);
  limit.dataset.value = st.grid_limit_kw;
  const cap = st.grid_cap;
  document.getElementById("grid-cap").textContent = cap
    ? `external cap ${num(cap.limit_kw)} kW${cap.until ? " until " + clock(cap.until) : ""}${cap.reason ? " · " + cap.reason : ""}`
    : "";
  document.getElementById("chargers-online").textContent = `${st.chargers_online} / ${st.chargers_total}`;
  document.getElementById("sessions").textContent = st.sessions;
  document.getElementById("clock").textContent = new Date(st.time).toLocaleString([], {timeZone});
}

// ------------------------------------------------------------------------------------------ chart

function pushHistory(st) {
  const time = new Date(st.time);
  const last = history[history.length - 1];
  if (last && time <= last.time) return;
  history.push({time, power: st.site_power_kw, limit: st.grid_limit_kw});
  const cutoff = time.getTime() - HISTORY_HOURS * 3600e3;
  while (history.length && history[0].time.getTime() < cutoff) history.shift();
}

function renderChart(now, ahead) {
  const chart = document.getElementById("chart");
  const W = 960, H = 260, left = 44, right = 10, top = 10, bottom = 24;
  // At least an hour of past; the plan ahead gets up to twice the past shown (3 h at least, 12 h at most), so
  // a long plan does not squeeze the recent history into a sliver.
  const pastMs = Math.max(3600e3, history.length ? now - history[0].time : 0);
  const aheadMs = Math.min(AHEAD_MAX_H * 3600e3, Math.max(3 * 3600e3, 2 * pastMs));
  const t0 = now.getTime() - pastMs, t1 = now.getTime() + aheadMs;
  const plan = ahead.map((p) => ({time: new Date(p.time), power: p.site_power_kw, limit: p.grid_limit_kw}))
    .filter((p) => p.time.getTime() <= t1);
  const values = [...history, ...plan].flatMap((p) => [p.power, p.limit]).filter(Number.isFinite);
  const yMax = Math.max(1, ...values) * 1.1;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (W - left - right);
  const y = (v) => top + (1 - v / yMax) * (H - top - bottom);
  const line = (points, key, step) => points.map((p, i) => {
    const px = x(p.time.getTime()).toFixed(1), py = y(p[key]).toFixed(1);
    if (i === 0) return `M${px},${py}`;
    return step ? `H${px}V${py}` : `L${px},${py}`;
  }).join("");

  chart.replaceChildren();
  for (let k = 0; k <= 4; k++) {
    const v = (yMax / 1.1) * k / 4;
    chart.append(svg("line", {class: "grid", x1: left, x2: W - right, y1: y(v), y2: y(v)}));
    const label = svg("text", {class: "axis", x: left - 6, y: y(v) + 4, "text-anchor": "end"});
    label.textContent = v.toFixed(0);
    chart.append(label);
  }
  const stepMs = [10, 15, 30, 60, 120, 180, 360].map((m) => m * 60e3).find((ms) => (t1 - t0) / ms <= 8) || 720 * 60e3;
  for (let t = Math.ceil(t0 / stepMs) * stepMs; t <= t1; t += stepMs) {
    const label = svg("text", {class: "axis", x: x(t), y: H - 6, "text-anchor": "middle"});
    label.textContent = clock(new Date(t).toISOString());
    chart.append(label);
  }
  chart.append(svg("line", {class: "now", x1: x(now.getTime()), x2: x(now.getTime()), y1: top, y2: H - bottom}));
  const limits = [...history, ...plan].sort((a, b) => a.time - b.time);
  if (limits.length) chart.append(svg("path", {class: "limit", d: line(limits, "limit", true)}));
  if (plan.length) chart.append(svg("path", {class: "ahead", d: line(plan, "power", true)}));
  if (history.length) chart.append(svg("path", {class: "history", d: line(history, "power", false)}));
}

// ------------------------------------------------------------------------------------------ tables

function connectorRow(c) {
  const state = !c.online ? el("span", {class: "offline"}, "offline")
    : c.transaction_id ? el("span", {}, "charging") : el("span", {class: "muted"}, c.plug);
  const soc = c.soc === null ? el("span", {class: "muted"}, "—")
    : el("span", {}, bar(c.soc), pct(c.soc), el("span", {class: "src"}, c.soc_source || ""));
  const powerText = `${num(c.power_kw, 2)} / ${num(c.limit_kw, 2)} kW` + (c.limit_a !== null ? ` (${num(c.limit_a)} A)` : "");
  let battery = el("span", {class: "muted"}, "—");
  if (c.battery_temp_c !== null) {
    const ratio = c.max_temp_c ? c.battery_temp_c / c.max_temp_c : 0;
    const cls = ratio >= 1 ? "hot" : ratio >= 0.9 ? "warm" : "";
    battery = el("span", {}, bar(ratio, cls), `${num(c.battery_temp_c)} / ${num(c.max_temp_c, 0)} °C`,
      el("span", {class: "src"}, c.temp_source || ""));
  }
  let outlook = el("span", {class: "muted"}, "—");
  if (c.will_make_it !== null) {
    outlook = el("span", {class: c.will_make_it ? "ok" : "miss"},
      `${pct(c.expected_soc_at_departure)} of ${pct(c.target_soc)} ${c.will_make_it ? "✓" : "✗ will miss"}`);
  }
  return el("tr", {"data-key": `${c.charger}/${c.connector}`},
    el("td", {class: "id"}, `${c.charger} #${c.connector}`),
    el("td", {class: "state"}, state),
    el("td", {class: "vehicle"}, c.vehicle || c.id_tag || ""),
    el("td", {class: "soc", "data-value": c.soc ?? ""}, soc),
    el("td", {class: "power", "data-value": c.power_kw ?? ""}, powerText),
    el("td", {class: "battery"}, battery),
    el("td", {class: "departure"}, c.departure ? clock(c.departure) : "—"),
    el("td", {class: "outlook"}, outlook),
    el("td", {class: "note"}, c.note || (c.controlled || !c.transaction_id ? "" : "not controlled")));
}

function renderCircuits(circuits) {
  const byParent = new Map();
  for (const c of circuits) {
    const list = byParent.get(c.parent) || [];
    list.push(c);
    byParent.set(c.parent, list);
  }
  const box = document.getElementById("circuits");
  box.replaceChildren();
  const walk = (parent, depth) => {
    for (const c of byParent.get(parent) || []) {
      const u = c.utilisation ?? 0;
      const limits = [c.max_current_a !== null ? `${num(c.max_current_a, 0)} A` : null,
        c.max_kw !== null ? `${num(c.max_kw, 0)} kW` : null].filter(Boolean).join(", ");
      const phases = Object.entries(c.current_a).map(([p, a]) => `${p} ${num(a)} A`).join(" · ");
      box.append(el("div", {class: "circuit", style: `padding-left:${depth * 18}px`, "data-circuit": c.id},
        el("span", {class: "name"}, c.id), bar(u, u > 1 ? "over" : u > 0.9 ? "warm" : ""),
        `${num(c.load_kw)} kW`, el("span", {class: "phases"}, `${phases} · limit ${limits}`)));
      walk(c.id, depth + 1);
    }
  };
  walk(null, 0);
}

function renderTicks(ticks) {
  const body = document.querySelector("#ticks tbody");
  body.replaceChildren(...ticks.map((t) => el("tr", {},
    el("td", {}, new Date(t.time).toLocaleTimeString([], {timeZone})),
    el("td", {class: `status-${t.status}`}, t.status),
    el("td", {}, t.solve_ms === null ? "—" : `${num(t.solve_ms, 0)} ms`),
    el("td", {}, `${num(t.tick_ms, 0)} ms`),
    el("td", {}, `${t.sessions}${t.uncontrolled ? ` + ${t.uncontrolled} uncontrolled` : ""}`),
    el("td", {}, `${t.profiles_sent} sent${t.profiles_failed ? `, ${t.profiles_failed} failed` : ""}`),
    el("td", {class: "binding"}, [t.binding.join(", "), t.reason, t.error].filter(Boolean).join(" · ") || "—"))));
}

function renderUncontrolled(list) {
  const ul = document.getElementById("uncontrolled");
  ul.replaceChildren(...(list.length ? list.map((u) => el("li", {},
    `${u.charger}${u.connector ? " #" + u.connector : ""}: ${num(u.power_kw)} kW budgeted — ${u.reason}`))
    : [el("li", {class: "muted"}, "every charger follows its limit")]));
}

// ------------------------------------------------------------------------------------------ health

const HEALTH_REFRESH_MS = 30e3;
let healthKey = null;          // the open incidents the timeline was last drawn with
let healthFetchedAt = 0;
let healthPending = false;

function age(fromIso, nowIso) {
  const s = Math.max(0, (new Date(nowIso) - new Date(fromIso)) / 1000);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function renderIncidents(incidents, nowIso) {
  const body = document.querySelector("#incidents tbody");
  if (!incidents.length) {
    body.replaceChildren(el("tr", {class: "none"}, el("td", {colspan: 8, class: "muted"}, "no open incidents")));
    return;
  }
  body.replaceChildren(...incidents.map((i) => el("tr", {"data-id": i.id, "data-kind": i.kind},
    el("td", {class: "id"}, `${i.charger}${i.connector ? " #" + i.connector : ""}`),
    el("td", {class: "kind"}, i.kind.replaceAll("_", " ")),
    el("td", {class: `sev-${i.severity}`}, i.severity),
    el("td", {class: "code"}, i.code || "—"),
    el("td", {class: "vendor"}, i.vendor_code || "—"),
    el("td", {class: "info"}, i.info || ""),
    el("td", {class: "age", "data-opened": i.opened_at}, age(i.opened_at, nowIso)),
    el("td", {class: "occurrences"}, i.occurrences))));
}

// Operator-requested unavailability is not an outage; its tooltip says so like its legend entry.
const STATE_LABELS = {unavailable_operator: "out of service (operator request)"};

function renderTimeline(health) {
  const t0 = new Date(health.since).getTime(), t1 = new Date(health.time).getTime();
  const ratio = new Map(health.availability.map((a) => [a.charger, a.availability_ratio]));
  const box = document.getElementById("timeline");
  box.replaceChildren(...health.timeline.map((t) => {
    const bar = el("div", {class: "tl-bar"});
    for (const seg of t.segments) {
      const a = new Date(seg.start).getTime(), b = new Date(seg.end).getTime();
      const left = ((a - t0) / (t1 - t0)) * 100, width = ((b - a) / (t1 - t0)) * 100;
      bar.append(el("i", {class: seg.state, "data-state": seg.state, style: `left:${left.toFixed(3)}%;width:${width.toFixed(3)}%`,
        title: `${STATE_LABELS[seg.state] ?? seg.state} ${clock(seg.start)}–${clock(seg.end)}`}));
    }
    const r = ratio.get(t.charger);
    return el("div", {class: "tl-row", "data-charger": t.charger},
      el("span", {class: "name"}, t.charger), bar,
      el("span", {class: `avail ${r !== null && r !== undefined && r < 0.97 ? "low" : ""}`, "data-value": r ?? ""},
        r === null || r === undefined ? "—" : `${(r * 100).toFixed(1)} %`));
  }));
}

async function refreshHealth() {
  if (healthPending) return;
  healthPending = true;
  try {
    const health = await fetch("/api/health").then((r) => r.json());
    healthFetchedAt = Date.now();
    renderTimeline(health);
  } catch (err) {
    console.warn("health panel:", err);
  } finally {
    healthPending = false;
  }
}

function renderHealth(incidents, nowIso) {
  renderIncidents(incidents, nowIso);
  // The timeline and availability come from /api/health: again when the open incidents change, else every 30 s.
  const key = incidents.map((i) => i.id).join(",");
  if (key !== healthKey || Date.now() - healthFetchedAt > HEALTH_REFRESH_MS) {
    healthKey = key;
    refreshHealth();
  }
}

// The learnt thermal models change slowly: read /api/thermal every THERMAL_EVERY_MS, not on every state event.
const THERMAL_EVERY_MS = 30000;

function renderThermal(t) {
  const age = t.ambient.age_s === null ? "site file" : `measured ${num(t.ambient.age_s / 60, 0)} min ago`;
  document.getElementById("ambient").textContent = `ambient ${num(t.ambient.temp_c)} °C (${age})` +
    (t.calibration ? "" : " · calibration off");
  const inUse = new Map(t.sessions.map((s) => [s.vehicle, s.source]));
  const body = document.querySelector("#thermal tbody");
  const rows = t.fits.map((f) => el("tr", {},
    el("td", {}, f.key),
    el("td", {}, inUse.get(f.key) ?? (f.trusted ? "trusted" : "not trusted")),
    el("td", {}, `${num(f.fitted.heating_c_per_kwh, 3)} ± ${num(f.heating_sd, 3)}`),
    el("td", {}, `${num(f.fitted.cooling_per_h, 2)} ± ${num(f.cooling_sd, 2)}`),
    el("td", {}, `${num(f.configured.heating_c_per_kwh, 3)} / ${num(f.configured.cooling_per_h, 2)}`),
    el("td", {}, `${num(100 * f.confidence, 0)} %`),
    el("td", {}, `${f.samples}`),
    el("td", {}, f.held_out_error_c === null ? "—"
      : `${num(f.held_out_error_c, 2)} / ${num(f.configured_error_c, 2)} °C`)));
  body.replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", {colspan: "8", class: "muted"}, "no battery temperature readings yet"))]));
}

async function refreshThermal() {
  try {
    renderThermal(await fetch("/api/thermal").then((r) => r.json()));
  } catch (err) {
    document.getElementById("ambient").textContent = `thermal models unavailable: ${err}`;
  }
}

function render(state) {
  renderStatus(state.status);
  document.querySelector("#connectors tbody").replaceChildren(...state.connectors.map(connectorRow));
  renderCircuits(state.circuits);
  renderTicks(state.ticks);
  renderUncontrolled(state.uncontrolled);
  renderChart(new Date(state.status.time), state.plan_ahead);
  renderHealth(state.incidents || [], state.status.time);
}

// ------------------------------------------------------------------------------------------ wiring

async function start() {
  const [dashboard, past] = await Promise.all([
    fetch("/api/dashboard").then((r) => r.json()),
    fetch(`/api/history?hours=${HISTORY_HOURS}`).then((r) => r.json()),
  ]);
  for (const p of past) history.push({time: new Date(p.time), power: p.site_power_kw, limit: p.grid_limit_kw});
  pushHistory(dashboard.status);
  render(dashboard);
  refreshThermal();
  setInterval(refreshThermal, THERMAL_EVERY_MS);
  const live = document.getElementById("live");
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => { live.textContent = "live"; live.className = "pill on"; });
  events.addEventListener("error", () => { live.textContent = "reconnecting"; live.className = "pill off"; });
  events.addEventListener("state", (e) => {
    const state = JSON.parse(e.data);
    pushHistory(state.status);
    render(state);
  });
}

start().catch((err) => {
  const live = document.getElementById("live");
  live.textContent = `error: ${err}`;
  live.className = "pill off";
});
