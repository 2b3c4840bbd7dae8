// The medvision reference page: vanilla JS, no build step, nothing loaded from elsewhere.
// The token lives in sessionStorage; images and the PDF are fetched with it and shown as blobs.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { token: sessionStorage.getItem("mv-token"), me: null, study: null, timer: null,
                heat: {}, blobs: [] };

function status(msg, isError) {
  const el = $("#status");
  el.textContent = msg || "";
  el.className = isError ? "error" : "";
}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401 && state.token) { signedOut("Your session ended: sign in again."); }
  if (!r.ok) {
    let detail = r.statusText;
    try { const j = await r.json(); detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) { /* not JSON */ }
    throw new Error(detail + " (HTTP " + r.status + ")");
  }
  return r;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

const pct = (x) => (x === null || x === undefined) ? "n/a" : (100 * x).toFixed(1) + " %";
const when = (t) => new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";

function show(view) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "view-" + view;
  if (state.timer) { clearInterval(state.timer); state.timer = null; }
  if (view === "studies") { loadStudies(); state.timer = setInterval(loadStudies, 2000); }
  if (view === "users") loadUsers();
  if (view === "audit") loadAudit();
  $("#main").focus();
}

function applyRole() {
  const role = state.me ? state.me.role : "";
  for (const e of document.querySelectorAll("[data-role]")) {
    if (e.tagName === "BUTTON" || e.id === "review-form") e.hidden = !e.dataset.role.split(" ").includes(role);
    else e.hidden = !e.dataset.role.split(" ").includes(role);
  }
}

function signedOut(msg) {
  state.token = null; state.me = null;
  sessionStorage.removeItem("mv-token");
  $("#nav").hidden = true;
  show("login");
  status(msg || "");
}

async function start() {
  if (!state.token) { show("login"); return; }
  try {
    state.me = await (await api("/api/v1/auth/me")).json();
  } catch (e) { signedOut(); return; }
  $("#whoami").textContent = state.me.name + " (" + state.me.role + ")";
  $("#nav").hidden = false;
  applyRole();
  show(state.me.role === "admin" ? "users" : "studies");
}

// --- sign in / out ------------------------------------------------------------------------
$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = new URLSearchParams({ username: $("#login-user").value, password: $("#login-password").value });
  try {
    const r = await api("/api/v1/auth/token", { method: "POST", body });
    state.token = (await r.json()).access_token;
    sessionStorage.setItem("mv-token", state.token);
    $("#login-password").value = "";
    status("");
    start();
  } catch (e) { status("Sign-in failed: " + e.message, true); }
});

$("#logout").addEventListener("click", async () => {
  try { await api("/api/v1/auth/logout", { method: "POST" }); } catch (e) { /* signed out anyway */ }
  signedOut("Signed out.");
});

for (const b of document.querySelectorAll("nav [data-view]")) b.addEventListener("click", () => show(b.dataset.view));

// --- upload ---------------------------------------------------------------------------------
let chosenFiles = [];
function choose(files) {
  chosenFiles = Array.from(files);
  $("#chosen").textContent = chosenFiles.length ? chosenFiles.length + " file(s): " + chosenFiles.map((f) => f.name).join(", ") : "";
}
const dz = $("#dropzone");
dz.addEventListener("click", () => $("#file-input").click());
dz.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); $("#file-input").click(); } });
dz.addEventListener("dragover", (ev) => { ev.preventDefault(); dz.classList.add("over"); });
dz.addEventListener("dragleave", () => dz.classList.remove("over"));
dz.addEventListener("drop", (ev) => { ev.preventDefault(); dz.classList.remove("over"); choose(ev.dataTransfer.files); });
$("#file-input").addEventListener("change", (ev) => choose(ev.target.files));

$("#upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!chosenFiles.length) { status("Choose or drop files first.", true); return; }
  const fd = new FormData();
  for (const f of chosenFiles) fd.append("files", f, f.name);
  const models = $("#models-input").value.trim();
  if (models) fd.append("models", models);
  if ($("#batch-input").checked) fd.append("batch", "true");
  try {
    status("Uploading...");
    const r = await (await api("/api/v1/studies", { method: "POST", body: fd })).json();
    // A batch's results name files by their place; the answer maps places to names (kept here only).
    status("Accepted: study " + r.study_id + " (" + r.models.join(", ") + ")" +
      (r.files.length ? ": " + r.files.join("; ") : ""));
    choose([]); $("#file-input").value = "";
    loadStudies();
  } catch (e) { status("Upload refused: " + e.message, true); }
});

// --- studies list ---------------------------------------------------------------------------
async function loadStudies() {
  if (!state.token || state.me.role === "admin") return;
  let rows;
  try { rows = await (await api("/api/v1/studies")).json(); } catch (e) { status(e.message, true); return; }
  const tb = $("#studies tbody");
  tb.replaceChildren(...rows.map((s) => el("tr", { "data-study": s.id, "data-state": s.state },
    el("td", {}, el("button", { type: "button", class: "link", onclick: () => openStudy(s.id) }, s.id.slice(0, 8))),
    el("td", {}, when(s.created_at)), el("td", {}, s.modality || "-"), el("td", {}, s.models.join(", ")),
    el("td", { class: "state-" + s.state }, s.state + (s.state === "running" ? " " + Math.round(100 * s.progress) + " %" : "") +
      (s.error ? ": " + s.error : "") + (s.reviewed ? " (reviewed)" : "")),
    el("td", {}, s.owner))));
}

// --- result view ----------------------------------------------------------------------------
async function blobUrl(path) {
  const u = URL.createObjectURL(await (await api(path)).blob());
  state.blobs.push(u);
  return u;
}

function loadImage(url) {
  return new Promise((ok, fail) => { const i = new Image(); i.onload = () => ok(i); i.onerror = fail; i.src = url; });
}

async function openStudy(id) {
  show("result");
  for (const u of state.blobs) URL.revokeObjectURL(u);
  state.blobs = []; state.heat = {};
  let s;
  try { s = await (await api("/api/v1/studies/" + id)).json(); } catch (e) { status(e.message, true); return; }
  state.study = s;
  $("#result-title").textContent = "Study " + s.id.slice(0, 8) + " (" + s.job.state + ")";
  const facts = [["Modality", s.modality || "-"], ["Body part", s.body_part || "-"], ["View", s.view || "-"],
    ["Study UID", s.study_uid || "-"], ["Input", s.kind], ["Uploaded", when(s.created_at)], ["Owner", s.owner]];
  if (s.job.error) facts.push(["Error", s.job.error]);
  $("#study-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  // A batch has no one image to show: its files are in the table below.
  document.querySelector(".viewer-wrap").style.display = s.kind === "batch" ? "none" : "";
  const box = $("#model-results");
  box.replaceChildren();
  const sel = $("#heat-select");
  sel.replaceChildren();
  let outline = null;
  for (const r of s.results) {
    const card = el("article", { class: "model", "data-model": r.model.name },
      el("h3", {}, r.model.name + " " + r.model.version + " (" + r.task + ")"),
      el("p", { class: "notice model-notice" }, r.model.notice));
    if (r.labels.length) {
      const t = el("table", { class: "grid labels" },
        el("thead", {}, el("tr", {}, ...["Label", "Calibrated probability", "Score (raw)", "Decision", "Refer to a human", "Conformal set"].map((h) => el("th", { scope: "col" }, h)))));
      const tb = el("tbody");
      for (const x of r.labels) {
        tb.append(el("tr", { "data-label": x.label, class: x.refer ? "refer" : "" },
          el("th", { scope: "row" }, x.label),
          el("td", { class: "calibrated" }, pct(x.calibrated)),
          el("td", { class: "score" }, "score " + x.probability.toFixed(3)),
          el("td", { class: x.decision ? "positive" : "negative" }, x.decision === null ? "n/a" : (x.decision ? "positive" : "negative")),
          el("td", { class: x.refer ? "refer-flag" : "" }, x.refer ? "REFER" + (x.refer_band ? " (band " + pct(x.refer_band[0]) + "–" + pct(x.refer_band[1]) + "; " + x.refer_rule + ")" : "") : "no"),
          el("td", {}, x.conformal_set ? "{" + x.conformal_set.join(", ") + "}" : "n/a")));
        if (x.heatmap) {
          state.heat[r.model.name + " / " + x.label] = x.heatmap;
          sel.append(el("option", { value: r.model.name + " / " + x.label }, r.model.name + " / " + x.label));
        }
      }
      t.append(tb);
      card.append(t);
    }
    // A batch study: one row per file and label, or the file's own error.
    if (r.items.length) {
      card.append(el("p", {}, r.items.length + " files, " + r.failed + " not classified"));
      card.append(el("table", { class: "grid items" },
        el("thead", {}, el("tr", {}, ...["File", "Label", "Calibrated probability", "Decision", "Refer to a human"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...r.items.flatMap((it) => it.error
          ? [el("tr", { class: "error", "data-file": it.file }, el("th", { scope: "row" }, it.file), el("td", { colspan: "4" }, "not classified: " + it.error))]
          : it.labels.map((x) => el("tr", { "data-file": it.file, class: x.refer ? "refer" : "" },
            el("th", { scope: "row" }, it.file), el("td", {}, x.label), el("td", { class: "calibrated" }, pct(x.calibrated)),
            el("td", { class: x.decision ? "positive" : "negative" }, x.decision === null ? "n/a" : (x.decision ? "positive" : "negative")),
            el("td", {}, x.refer ? "REFER" : "no")))))));
    }
    if (r.regions.length) {
      card.append(el("table", { class: "grid regions" },
        el("thead", {}, el("tr", {}, ...["Region", "Voxels", "Area (mm²)", "Volume (ml)"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...r.regions.map((g) => el("tr", {}, el("th", { scope: "row" }, g.name), el("td", {}, g.voxels),
          // No pixel spacing: the pixel count is the measurement, never a size in false units.
          el("td", {}, g.spacing_known ? g.area_mm2.toFixed(1) : "spacing unknown"),
          el("td", {}, g.spacing_known ? g.volume_ml.toFixed(2) : "spacing unknown"))))));
    }
    // Issue 16: how unlike the calibration images the outputs are, and the population warnings.
    if (r.ood && r.ood.score !== null) {
      card.append(el("p", { class: "ood" + (r.ood.far ? " far" : "") },
        "Out-of-distribution score " + r.ood.score.toFixed(1) + " (" + r.ood.label + ", percentile " +
        r.ood.percentile.toFixed(0) + " of the calibration images; far above " + r.ood.far_above.toFixed(0) +
        ", not a probability)" + (r.ood.far ? ": FAR" : "")));
    }
    if (r.warnings.length) {
      card.append(el("ul", { class: "warnings" }, ...r.warnings.map((w) => el("li", {}, "Warning: " + w))));
    }
    if (r.links.overlay) outline = r.links.overlay;
    box.append(card);
  }
  if (!sel.options.length) sel.append(el("option", { value: "" }, "none (no positive finding)"));
  state.outline = outline;
  $("#outline-toggle").disabled = !outline;
  $("#pdf-download").disabled = !s.links.report;
  state.heatImg = null;
  delete $("#base-img").dataset.src;
  if (s.links.image) await drawHeat();
  renderReviews(s);
}

async function drawHeat() {
  // Each call supersedes the ones still loading (slider moves quickly).
  const gen = state.drawGen = (state.drawGen || 0) + 1;
  const c = $("#heat-canvas");
  const base = $("#base-img");
  const key = $("#heat-select").value;
  c.dataset.drawn = "0";
  const want = ($("#outline-toggle").checked && state.outline) ? state.outline
    : (state.study && state.study.links.image);
  if (want && base.dataset.src !== want) {
    const u = await blobUrl(want);
    if (gen !== state.drawGen) return;
    base.dataset.src = want;
    base.src = u;
  }
  await (base.decode ? base.decode().catch(() => {}) : Promise.resolve());
  if (gen !== state.drawGen) return;
  c.width = base.naturalWidth || 1; c.height = base.naturalHeight || 1;
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  if (!key || !state.heat[key] || !$("#heat-toggle").checked) return;
  if (!state.heatImg || state.heatImg.key !== key) {
    const img = await loadImage(await blobUrl(state.heat[key]));
    if (gen !== state.drawGen) return;
    state.heatImg = { key, img };
  }
  ctx.globalAlpha = Number($("#heat-opacity").value) / 100;
  ctx.drawImage(state.heatImg.img, 0, 0, c.width, c.height);
  c.dataset.drawn = "1";
}
for (const id of ["#heat-select", "#heat-toggle", "#outline-toggle"]) $(id).addEventListener("change", drawHeat);
$("#heat-opacity").addEventListener("input", drawHeat);
$("#back").addEventListener("click", () => show("studies"));

$("#pdf-download").addEventListener("click", async () => {
  try {
    const url = await blobUrl(state.study.links.report);
    const a = $("#pdf-link");
    a.href = url; a.download = "medvision-" + state.study.id + ".pdf";
    a.click();
    status("Report downloaded.");
  } catch (e) { status("Report: " + e.message, true); }
});

function renderReviews(s) {
  $("#reviews").replaceChildren(...s.reviews.map((rv) => el("div", { class: "review" },
    el("h3", {}, "Review by " + rv.reviewer + ", " + when(rv.created_at)),
    el("ul", {}, ...rv.findings.map((f) => el("li", {}, f.model + " / " + f.label + ": " + (f.agree ? "agrees" : "disagrees") + (f.comment ? " (" + f.comment + ")" : "")))),
    rv.comment ? el("p", {}, rv.comment) : "")));
  const form = $("#review-form");
  form.hidden = !(state.me && state.me.role === "radiologist" && s.results.length);
  const rows = [];
  let i = 0;
  for (const r of s.results) {
    for (const name of r.labels.map((x) => x.label).concat(r.regions.map((g) => g.name))) {
      const id = "rv-" + (i++);
      rows.push(el("div", { class: "review-row", "data-model": r.model.name, "data-label": name },
        el("label", { for: id }, r.model.name + " / " + name),
        el("select", { id }, el("option", { value: "" }, "not reviewed"), el("option", { value: "agree" }, "agree"), el("option", { value: "disagree" }, "disagree")),
        el("label", { for: id + "-c", class: "sr" }, "Comment on " + name), el("input", { id: id + "-c", placeholder: "comment" })));
    }
  }
  $("#review-rows").replaceChildren(...rows);
}

$("#review-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const findings = [];
  for (const row of document.querySelectorAll(".review-row")) {
    const v = row.querySelector("select").value;
    if (v) findings.push({ model: row.dataset.model, label: row.dataset.label, agree: v === "agree", comment: row.querySelector("input").value });
  }
  if (!findings.length) { status("Mark at least one finding.", true); return; }
  try {
    await api("/api/v1/studies/" + state.study.id + "/review", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ findings, comment: $("#review-comment").value }) });
    status("Review saved.");
    openStudy(state.study.id);
  } catch (e) { status("Review refused: " + e.message, true); }
});

// --- admin ----------------------------------------------------------------------------------
async function loadUsers() {
  let users;
  try { users = await (await api("/api/v1/users")).json(); } catch (e) { status(e.message, true); return; }
  $("#users tbody").replaceChildren(...users.map((u) => {
    const role = el("select", { "aria-label": "Role of " + u.name }, ...["clinician", "radiologist", "admin"].map((r) => el("option", r === u.role ? { selected: "" } : {}, r)));
    const act = el("button", { type: "button", onclick: () => patchUser(u.id, { active: !u.active }) }, u.active ? "Disable" : "Enable");
    const save = el("button", { type: "button", onclick: () => patchUser(u.id, { role: role.value }) }, "Save role");
    return el("tr", {}, el("th", { scope: "row" }, u.name), el("td", {}, role), el("td", {}, u.active ? "yes" : "no"), el("td", {}, save, " ", act));
  }));
}
async function patchUser(id, body) {
  try { await api("/api/v1/users/" + id, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }); status("Saved."); }
  catch (e) { status(e.message, true); }
  loadUsers();
}
$("#user-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("/api/v1/users", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: $("#new-user").value, role: $("#new-role").value, password: $("#new-password").value }) });
    $("#new-password").value = ""; status("User added."); loadUsers();
  } catch (e) { status(e.message, true); }
});

async function loadAudit() {
  let rows;
  try { rows = await (await api("/api/v1/audit?limit=300")).json(); } catch (e) { status(e.message, true); return; }
  $("#audit tbody").replaceChildren(...rows.map((r) => el("tr", {}, el("td", {}, r.seq), el("td", {}, when(r.at)), el("td", {}, r.user),
    el("td", {}, r.role), el("td", {}, r.action), el("td", {}, r.object), el("td", {}, r.outcome), el("td", {}, r.client))));
}
$("#audit-verify").addEventListener("click", async () => {
  try {
    const v = await (await api("/api/v1/audit/verify")).json();
    $("#audit-result").textContent = v.ok ? "Intact: " + v.rows + " rows." : "BROKEN at row " + v.bad_seq + ": " + v.reason;
  } catch (e) { status(e.message, true); }
});

start();
