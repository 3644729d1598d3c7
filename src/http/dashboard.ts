/**
 * The live dashboard at `GET /`: one self-contained HTML page (inline CSS and JS, no build
 * step). It renders the snapshots from `GET /events` (SSE): members and this member's links
 * as a graph with the master marked, the partition table as a grid of cells coloured by
 * primary owner (bottom bar: first backup; dashed outline: migrating; red corner: fewer live
 * replicas in sync than wanted, as `replicasMissing` counts them), map sizes, and jobs with progress (polled from `GET /jobs` when the node serves it).
 *
 * Stable hooks for browser tests: `[data-testid=partition-cell]` (one per partition, with
 * `data-partition` and `data-owner`), `[data-testid=member]` (one per live member, with
 * `data-member-id` and `data-master="true"` on the master), `[data-testid=member-count]`,
 * `[data-testid=master]`, `[data-testid=map-row]`, `[data-testid=job-row]` and
 * `[data-testid=connection-status]` (`data-state` is `connecting`, `live`, `disconnected` or
 * `locked`), `[data-testid=login]` and `[data-testid=token-input]`.
 *
 * When the member has a token, the page itself is open but holds no data: it asks for the
 * token once, keeps it in `sessionStorage` for the tab's session and sends it only in the
 * `Authorization` header (the event stream is read with fetch, since EventSource cannot
 * send headers), so the token never lands in a URL or a server log.
 */

const css = `
:root { --bg:#0f1720; --panel:#17212c; --line:#2a3644; --text:#dce4ec; --muted:#8796a5; --accent:#f5c542; --bad:#ef5350; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; align-items:center; gap:16px; padding:12px 20px; border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0; }
header h1 small { color:var(--muted); font-weight:normal; }
.status { margin-left:auto; padding:2px 10px; border-radius:10px; font-size:12px; background:#334; }
.status[data-state=live] { background:#1e5b34; }
.status[data-state=disconnected], .status[data-state=locked] { background:#6b2121; }
#login { display:flex; gap:8px; align-items:center; padding:10px 20px; border-bottom:1px solid var(--line); }
#login[hidden] { display:none; }
#login input { background:var(--panel); color:var(--text); border:1px solid var(--line); border-radius:4px; padding:4px 8px; }
.summary { display:flex; flex-wrap:wrap; gap:6px 22px; padding:10px 20px; color:var(--muted); border-bottom:1px solid var(--line); }
.summary b { color:var(--text); }
main { display:grid; grid-template-columns: minmax(300px, 360px) 1fr; gap:16px; padding:16px 20px; }
.panel { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; min-width:0; }
.panel h2 { font-size:14px; margin:0 0 10px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); }
.panel.span2 { grid-column: 1 / -1; }
#graph { width:100%; height:auto; max-height:320px; }
#graph text { fill:var(--text); font-size:11px; }
#graph .link { stroke:#6d8196; stroke-width:2; }
#graph .link.relayed { stroke-dasharray:5 4; stroke:#b48ead; }
#graph .ring { fill:none; stroke:var(--accent); stroke-width:3; }
ul.members { list-style:none; margin:8px 0 0; padding:0; }
ul.members li { display:flex; flex-wrap:wrap; align-items:center; gap:4px 8px; padding:4px 0; border-top:1px solid var(--line); }
.swatch { width:12px; height:12px; border-radius:3px; flex:none; }
.badge { white-space:nowrap; font-size:11px; padding:0 6px; border-radius:8px; background:#2c3a48; color:var(--muted); }
.badge.master { background:var(--accent); color:#111; font-weight:600; }
.mono { white-space:nowrap; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; color:var(--muted); }
#grid { display:grid; grid-template-columns: repeat(auto-fill, minmax(20px, 1fr)); gap:3px; }
.cell { position:relative; aspect-ratio:1; border-radius:3px; background:#444; transition: background-color .4s; }
.cell.unowned { background:repeating-linear-gradient(45deg,#333 0 4px,#444 4px 8px); }
.cell.migrating { outline:2px dashed #fff; outline-offset:-2px; animation: pulse 1s infinite alternate; }
.cell.missing::after { content:""; position:absolute; top:0; right:0; border-style:solid; border-width:0 7px 7px 0; border-color:transparent var(--bad) transparent transparent; }
@keyframes pulse { from { opacity:1 } to { opacity:.55 } }
.legend { margin-top:8px; font-size:12px; color:var(--muted); }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:4px 6px; border-top:1px solid var(--line); }
th { color:var(--muted); font-weight:normal; }
.bar { height:8px; background:#2c3a48; border-radius:4px; overflow:hidden; min-width:80px; }
.bar > div { height:100%; background:#4caf50; }
.stale main { opacity:.55; }
@media (max-width: 800px) { main { grid-template-columns: 1fr; } }
`;

const script = `
"use strict";
const $ = (id) => document.getElementById(id);
// Hues follow admission order (stable while members come and go): the golden angle keeps
// consecutive members far apart on the colour wheel. Unknown ids fall back to a hash.
const joinOrder = new Map();
function hue(id) {
  const j = joinOrder.get(id);
  if (j !== undefined) return Math.round((j * 137.508 + 20) % 360);
  let h = 2166136261; for (let i = 0; i < id.length; i++) { h ^= id.charCodeAt(i); h = Math.imul(h, 16777619); } return (h >>> 0) % 360;
}
function colour(id, light) { return id ? "hsl(" + hue(id) + " 62% " + (light || 52) + "%)" : "#555"; }
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
const short = (id) => id && id.length > 10 ? id.slice(0, 10) + "…" : (id || "");
let cells = [];
let last = null;

function setStatus(state, text) { const s = $("status"); s.dataset.state = state; s.textContent = text; document.body.classList.toggle("stale", state === "disconnected"); }

function render(s) {
  last = s;
  const c = s.cluster;
  const byId = new Map(c.members.map((m) => [m.id, m]));
  // Members seen lately, at most 256: a tab left open through rolling restarts kept every id ever seen.
  for (const m of c.members) { joinOrder.delete(m.id); joinOrder.set(m.id, m.joinedAt); }
  while (joinOrder.size > 256) joinOrder.delete(joinOrder.keys().next().value);
  const nameOf = (id) => (byId.get(id) || {}).name || short(id);
  $("cluster-name").textContent = c.cluster;
  $("self").textContent = nameOf(c.self);
  $("member-count").textContent = String(c.members.length);
  $("master").textContent = c.master ? nameOf(c.master) : "none";
  $("epoch").textContent = String(c.epoch);
  $("mlv").textContent = String(c.memberListVersion);
  $("ptv").textContent = String(c.partitionTableVersion);
  $("missing").textContent = String(c.partitions.replicasMissing);
  $("migrating").textContent = String(c.partitions.migrating);

  // Member list
  const ul = $("members");
  ul.replaceChildren();
  for (const m of c.members) {
    const li = el("li", { "data-testid": "member", "data-member-id": m.id, "data-master": String(m.id === c.master) });
    const sw = el("span", { class: "swatch" });
    sw.style.background = colour(m.lite ? "" : m.id);
    li.append(sw, el("b", {}, m.name), el("span", { class: "mono" }, short(m.id)), el("span", { class: "badge" }, m.runtime));
    if (m.lite) li.append(el("span", { class: "badge" }, "lite"));
    if (m.id === c.master) li.append(el("span", { class: "badge master" }, "★ master"));
    if (m.id === c.self) li.append(el("span", { class: "badge" }, "this node"));
    const owned = c.partitions.owners[m.id] || 0;
    li.append(el("span", { class: "mono", style: "margin-left:auto" }, owned + " primaries"));
    ul.append(li);
  }

  // Graph: members on a circle; this member's links drawn from it.
  const g = $("graph");
  g.replaceChildren();
  const n = c.members.length, R = 115, cx = 160, cy = 160;
  const pos = new Map();
  c.members.forEach((m, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(n, 1);
    pos.set(m.id, n === 1 ? [cx, cy] : [cx + R * Math.cos(a), cy + R * Math.sin(a)]);
  });
  for (const l of c.links) {
    const a = pos.get(c.self), b = pos.get(l.peer);
    if (!a || !b) continue;
    const line = svg("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "link " + l.kind, "data-testid": "link", "data-kind": l.kind });
    line.append(svg("title", {}, l.kind === "relayed" ? "relayed via " + nameOf(l.via) : "direct link"));
    g.append(line);
  }
  for (const m of c.members) {
    const [x, y] = pos.get(m.id);
    const grp = svg("g", { "data-testid": "member-node", "data-member-id": m.id });
    if (m.id === c.master) grp.append(svg("circle", { cx: x, cy: y, r: 23, class: "ring" }));
    grp.append(svg("circle", { cx: x, cy: y, r: 17, fill: colour(m.lite ? "" : m.id), stroke: m.id === c.self ? "#fff" : "none", "stroke-width": 2 }));
    if (m.id === c.master) grp.append(svg("text", { x: x, y: y + 4, "text-anchor": "middle", style: "font-size:14px;fill:#111" }, "★"));
    grp.append(svg("text", { x: x, y: y + 36, "text-anchor": "middle" }, m.name));
    grp.append(svg("title", {}, m.name + " (" + m.id + ")" + (m.id === c.master ? " — master" : "")));
    g.append(grp);
  }

  // Partition grid
  const t = s.table, count = t.replicas.length;
  const grid = $("grid");
  if (cells.length !== count) {
    grid.replaceChildren();
    cells = [];
    for (let i = 0; i < count; i++) {
      const d = el("div", { class: "cell", "data-testid": "partition-cell", "data-partition": String(i) });
      cells.push(d);
      grid.append(d);
    }
  }
  $("pcount").textContent = count + " partitions";
  let wanted = t.wanted;
  if (wanted === undefined) {
    wanted = 0;
    for (const r of t.replicas) wanted = Math.max(wanted, r.length);
  }
  const migrating = new Map(t.migrating.map(([p, to]) => [p, to]));
  // As the summary counts: a replica on a member no longer alive, or a backup still filling, is not one.
  const filling = new Map((t.filling || []).map(([p, f]) => [p, f]));
  const live = t.live ?? t.ids.length;
  for (let i = 0; i < count; i++) {
    const reps = t.replicas[i].map((k) => t.ids[k]);
    const d = cells[i];
    const owner = reps[0] || "";
    d.dataset.owner = owner;
    d.dataset.backups = reps.slice(1).join(",");
    d.classList.toggle("unowned", !owner);
    const dead = t.replicas[i].filter((k) => k >= live).map((k) => t.ids[k]);
    const fill = (filling.get(i) || []).filter((k) => k < live).map((k) => t.ids[k]);
    const held = reps.length - dead.length - fill.length;
    d.classList.toggle("missing", held < wanted);
    d.classList.toggle("migrating", migrating.has(i));
    d.style.backgroundColor = owner ? colour(owner) : "";
    d.style.boxShadow = reps[1] ? "inset 0 -5px 0 " + colour(reps[1], 35) : "none";
    let title = "partition " + i + ": primary " + (owner ? nameOf(owner) : "none");
    if (reps.length > 1) title += ", backups " + reps.slice(1).map(nameOf).join(", ");
    if (migrating.has(i)) title += ", migrating to " + migrating.get(i).map((k) => nameOf(t.ids[k])).join(", ");
    if (fill.length > 0) title += ", still filling: " + fill.map(nameOf).join(", ");
    if (dead.length > 0) title += ", not alive: " + dead.map(nameOf).join(", ");
    if (held < wanted) title += " (" + (wanted - held) + " missing)";
    d.title = title;
  }

  // Maps
  const mb = $("maps-body");
  mb.replaceChildren();
  for (const m of s.maps) {
    const tr = el("tr", { "data-testid": "map-row", "data-map": m.name });
    tr.append(el("td", {}, m.name), el("td", {}, m.size === null ? "?" : String(m.size)));
    mb.append(tr);
  }
  $("maps-empty").hidden = s.maps.length > 0;
}

async function pollJobs() {
  if (asking) return;
  try {
    const r = await fetch("jobs", { headers: authHeaders({ accept: "application/json" }) });
    if (r.status === 404) { $("jobs-panel").hidden = true; return; }
    if (r.status === 401) return; // connect() asks for the token and restarts polling
    if (r.ok) {
      $("jobs-panel").hidden = false;
      const list = (await r.json()).slice(-20);
      const body = $("jobs-body");
      const rows = [];
      for (const j of list) {
        let done = 0, total = 0, written = 0;
        if (!["FINISHED", "FAILED", "CANCELED"].includes(j.status) || list.length <= 8) {
          try {
            const d = await (await fetch("jobs/" + encodeURIComponent(j.id), { headers: authHeaders() })).json();
            for (const t of d.tasks || []) { total++; if (t.state === "FINISHED") done++; written += t.recordsWritten || 0; }
          } catch (_) { /* detail unavailable */ }
        }
        const tr = el("tr", { "data-testid": "job-row", "data-job-id": j.id, "data-status": j.status });
        const bar = el("div", { class: "bar" }), fill = el("div");
        fill.style.width = (j.status === "FINISHED" ? 100 : total ? Math.round((100 * done) / total) : 0) + "%";
        bar.append(fill);
        const prog = el("td");
        prog.append(bar, el("span", { class: "mono" }, written + " records" + (total ? ", " + done + "/" + total + " tasks done" : "")));
        tr.append(el("td", {}, j.name || j.id), el("td", {}, j.status), prog);
        rows.push(tr);
      }
      body.replaceChildren(...rows);
      $("jobs-empty").hidden = list.length > 0;
    }
  } catch (_) { /* node unreachable; the status badge says so */ }
  setTimeout(pollJobs, 2000);
}

// The token (when the node asks for one) is typed in once and kept in sessionStorage for
// this tab's session; it travels only in the Authorization header, never in a URL.
const tokenKey = "shoal.token";
function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const t = sessionStorage.getItem(tokenKey);
  if (t) h.authorization = "Bearer " + t;
  return h;
}
let asking = false;
function askToken(wrong) {
  sessionStorage.removeItem(tokenKey);
  setStatus("locked", wrong ? "token refused" : "token needed");
  $("login").hidden = false;
  $("login-wrong").hidden = !wrong;
  asking = true;
  $("token").focus();
}
$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const t = $("token").value.trim();
  if (!t) return;
  sessionStorage.setItem(tokenKey, t);
  $("token").value = "";
  $("login").hidden = true;
  asking = false;
  connect();
  pollJobs();
});

// Server-sent events read with fetch (EventSource cannot send an Authorization header).
async function connect() {
  setStatus("connecting", "connecting…");
  try {
    const r = await fetch("events", { headers: authHeaders({ accept: "text/event-stream" }), cache: "no-store" });
    if (r.status === 401) { askToken(sessionStorage.getItem(tokenKey) !== null); return; }
    if (!r.ok || !r.body) throw new Error("HTTP " + r.status);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value.replace(/\\r\\n?/g, "\\n");
      let i;
      while ((i = buf.indexOf("\\n\\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (event === "snapshot" && data.length) { setStatus("live", "live"); render(JSON.parse(data.join("\\n"))); }
      }
      if (buf.length > 16 * 1024 * 1024) throw new Error("event too large");
    }
  } catch (_) { /* reconnect below */ }
  setStatus("disconnected", "disconnected — retrying");
  setTimeout(connect, 2000);
}
connect();
pollJobs();
`;

const body = `
<header>
  <h1>Shoal <small>cluster <span id="cluster-name">…</span> · served by <span id="self">…</span></small></h1>
  <span id="status" class="status" data-testid="connection-status" data-state="connecting">connecting…</span>
</header>
<form id="login" data-testid="login" hidden autocomplete="off">
  <label for="token">This member needs a token (<code>--token</code> or <code>--read-token</code>):</label>
  <input id="token" type="password" data-testid="token-input">
  <button type="submit">Open</button>
  <span id="login-wrong" class="legend" hidden>That token was refused.</span>
</form>
<section class="summary">
  <span>members <b id="member-count" data-testid="member-count">0</b></span>
  <span>master <b id="master" data-testid="master">–</b></span>
  <span>epoch <b id="epoch">–</b></span>
  <span>member list v<b id="mlv">–</b></span>
  <span>partition table v<b id="ptv">–</b></span>
  <span>replicas missing <b id="missing" data-testid="replicas-missing">–</b></span>
  <span>migrating <b id="migrating" data-testid="migrating">–</b></span>
</section>
<main>
  <section class="panel">
    <h2>Members</h2>
    <svg id="graph" viewBox="0 0 320 320" data-testid="member-graph" role="img" aria-label="members and links"></svg>
    <div class="legend">ring/★ = master · white outline = this node · solid line = direct link · dashed = relayed</div>
    <ul id="members" class="members"></ul>
  </section>
  <section class="panel">
    <h2>Partitions <small id="pcount"></small></h2>
    <div id="grid" data-testid="partition-grid"></div>
    <div class="legend">colour = primary owner · bottom bar = first backup · dashed outline = migrating · red corner = replica missing</div>
  </section>
  <section class="panel">
    <h2>Maps</h2>
    <table><thead><tr><th>map</th><th>entries</th></tr></thead><tbody id="maps-body"></tbody></table>
    <p id="maps-empty" class="legend">no maps yet</p>
  </section>
  <section class="panel" id="jobs-panel" hidden>
    <h2>Jobs</h2>
    <table><thead><tr><th>job</th><th>status</th><th>progress</th></tr></thead><tbody id="jobs-body"></tbody></table>
    <p id="jobs-empty" class="legend">no jobs</p>
  </section>
</main>
`;

/**
 * The dashboard page.
 * @returns a complete HTML document
 */
export function dashboardHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal dashboard</title>
<style>${css}</style>
</head>
<body>
${body}
<script>${script}</script>
</body>
</html>
`;
}
