// The review desk's shared code: the signed-in key (sessionStorage, this tab only), calls to the JSON API with
// it, and errors said in words a clerk understands. No framework; nothing loaded from outside this server.
"use strict";
const Desk = (() => {
  const STORE = "medkg.desk";
  const session = () => { try { return JSON.parse(sessionStorage.getItem(STORE) || "null"); } catch { return null; } };

  const ROLE_PAGES = { clerk: "claims", clinician: "patient records", researcher: "cohorts and concepts",
                       integration: "record feeds", admin: "users" };

  function plain(status, problem, what) {
    const detail = (problem && problem.detail) || "";
    const code = (problem && problem.code) || "";
    const s = session();
    switch (status) {
      case 0: return "The server cannot be reached. Check the connection and try again.";
      case 401: return "Your key was not accepted (it may have been revoked). Sign in again.";
      case 403: return `You are signed in as ${s ? s.name + " (" + s.role + ")" : "a user"}; ` +
                       `this page is not open to your role. Your role works with ${ROLE_PAGES[s && s.role] || "other pages"}.`;
      case 404: return `This ${what || "item"} was not found. It may have been removed, or the link is wrong.`;
      case 409: return code === "claim-decided" ? "This claim has already been approved or rejected; it can no longer be changed."
                                                : "This cannot be done now: " + detail;
      case 412: return "Someone else changed this claim; reload to see their change, your edits are kept.";
      case 422: return "A value was not accepted: " + (detail || "check the highlighted fields.");
      case 428: return "The page lost track of the claim's version; reload it (your edits are kept).";
      case 429: return "Too many requests in a short time; wait a few seconds and try again.";
      case 503: return "The knowledge graph is unavailable just now; try again in a minute.";
      case 504: return "The server took too long to answer; try again.";
      default: return status >= 500 ? "Something went wrong on the server; the request was not completed."
                                    : (detail || `The request failed (${status}).`);
    }
  }

  async function call(method, path, { json, headers = {}, blob = false, what } = {}) {
    const s = session();
    if (!s) { toLogin(); throw new Error("not signed in"); }
    const init = { method, headers: { "X-API-Key": s.key, ...headers }, cache: "no-store" };
    if (json !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(json); }
    let r;
    try { r = await fetch(path, init); } catch (e) { return { ok: false, status: 0, message: plain(0), headers: new Headers() }; }
    if (r.ok) return { ok: true, status: r.status, headers: r.headers, body: blob ? await r.blob() : await r.json() };
    let problem = null;
    try { problem = await r.json(); } catch { /* not JSON */ }
    if (r.status === 401) { sessionStorage.removeItem(STORE); }
    return { ok: false, status: r.status, headers: r.headers, problem, message: plain(r.status, problem, what) };
  }

  function say(text, kind = "error") {
    const box = document.getElementById("message");
    if (!box) return;
    if (!text) { box.hidden = true; box.textContent = ""; return; }
    box.textContent = text;
    box.className = "message " + kind;
    box.hidden = false;
  }

  function toLogin() {
    if (document.body.dataset.page !== "login") location.assign("/ui/login?next=" + encodeURIComponent(location.pathname));
  }

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else if (k in e && typeof v !== "string") e[k] = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function header() {
    const s = session();
    const who = document.getElementById("who");
    if (who && s) who.textContent = `${s.name} · ${s.role}`;
    const out = document.getElementById("sign-out");
    if (out) out.addEventListener("click", () => { sessionStorage.removeItem(STORE); location.assign("/ui/login"); });
    const go = document.getElementById("patient-go");
    if (go) go.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const pid = go.elements.pid.value.trim();
      if (pid) location.assign("/ui/patients/" + encodeURIComponent(pid));
    });
  }

  async function login(form) {
    const key = form.elements.key.value.trim();
    say("");
    let r;
    try { r = await fetch("/v1/me", { headers: { "X-API-Key": key }, cache: "no-store" }); }
    catch { say(plain(0)); return; }
    if (!r.ok) { say(r.status === 401 ? "That key was not accepted. Check it, or ask an administrator for a new one."
                                       : plain(r.status)); return; }
    const me = await r.json();
    sessionStorage.setItem(STORE, JSON.stringify({ key, name: me.name, role: me.role }));
    form.reset();
    const next = new URLSearchParams(location.search).get("next");
    const home = "/ui/queue";
    location.assign(next && next.startsWith("/ui/") && !next.startsWith("/ui/login") ? next : home);
  }

  document.addEventListener("DOMContentLoaded", () => {
    header();
    if (document.body.dataset.page === "login") {
      const f = document.getElementById("login-form");
      f.addEventListener("submit", (ev) => { ev.preventDefault(); login(f); });
    } else if (!session()) {
      toLogin();
    }
  });

  return { call, say, el, session, plain };
})();
