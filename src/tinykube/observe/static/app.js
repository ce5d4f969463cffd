// tinykube live map: Services -> EndpointSlices -> pods, live from /api/map/stream.
// No build step and no dependencies: DOM built with createElement, data from the observe API.
"use strict";

const state = { doc: null, selected: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function readiness(ready) {
  return el("span", { class: ready ? "ready" : "notready" }, ready ? "ready" : "not ready");
}

function nameLink(kind, namespace, name) {
  return el("span", { class: "name", "data-kind": kind, onclick: () => select(kind, namespace, name) }, name);
}

function endpointRow(namespace, e) {
  return el("div", { class: "endpoint", "data-pod": e.pod, "data-ready": String(e.ready) },
    e.pod ? nameLink("pod", namespace, e.pod) : el("span", {}, "-"),
    el("span", { class: "ip" }, e.addresses.join(", ")),
    readiness(e.ready),
    el("span", { class: "dns" }, [e.node && `node ${e.node}`, e.dns].filter(Boolean).join("  ")));
}

function serviceCard(namespace, svc) {
  const kind = svc.type === "ExternalName" ? "ExternalName" : svc.headless ? "headless" : svc.type;
  const target = svc.externalName || (svc.headless ? "" : svc.clusterIP);
  const card = el("div", { class: "service", "data-service": `${namespace}/${svc.name}` },
    el("div", { class: "head" }, nameLink("service", namespace, svc.name),
      el("span", { class: "kind" }, kind), el("span", { class: "dns" }, target)),
    el("div", { class: "dns" }, svc.dns + (svc.ports.length ? "  " + svc.ports.join(" ") : "")));
  for (const slice of svc.slices) {
    const box = el("div", { class: "slice", "data-slice": slice.name },
      el("div", { class: "label" }, `EndpointSlice ${slice.name}`));
    for (const e of slice.endpoints) box.append(endpointRow(namespace, e));
    if (!slice.endpoints.length) box.append(el("div", { class: "note" }, "no endpoints"));
    card.append(box);
  }
  if (!svc.slices.length && kind !== "ExternalName") card.append(el("div", { class: "note" }, "no EndpointSlices"));
  return card;
}

function render() {
  const doc = state.doc;
  if (!doc) return;
  const chosen = $("namespace").value;
  const select = $("namespace");
  const known = new Set([...select.options].map((o) => o.value));
  for (const ns of doc.namespaces) {
    if (!known.has(ns.name)) select.append(el("option", { value: ns.name }, ns.name));
  }
  const map = $("map");
  map.replaceChildren();
  for (const ns of doc.namespaces) {
    if (chosen && ns.name !== chosen) continue;
    if (!chosen && ns.name === "kube-system") continue;
    const services = el("div", { class: "services" });
    for (const svc of ns.services) services.append(serviceCard(ns.name, svc));
    const loose = ns.pods.filter((p) => !p.inService);
    const pods = loose.length ? el("div", { class: "pods" }, "pods in no Service: ",
      ...loose.flatMap((p, i) => [i ? ", " : "", nameLink("pod", ns.name, p.name), ` (${p.ready ? "ready" : "not ready"})`])) : null;
    map.append(el("section", { class: "namespace", "data-namespace": ns.name },
      el("h2", {}, `namespace ${ns.name}`), services, pods));
  }
  if (state.selected) refreshPanel();
}

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function dnsNameOf(kind, namespace, name) {
  for (const ns of state.doc ? state.doc.namespaces : []) {
    if (ns.name !== namespace) continue;
    const list = kind === "service" ? ns.services : ns.pods;
    const item = list.find((x) => x.name === name);
    if (item) return kind === "service" ? item.dns : (item.dns[0] || "");
  }
  return "";
}

function select(kind, namespace, name) {
  state.selected = { kind, namespace, name };
  $("panel").hidden = false;
  $("panel-title").textContent = `${kind} ${namespace}/${name}`;
  refreshPanel();
}

let panelBusy = false;
async function refreshPanel() {
  if (panelBusy || !state.selected) return;
  panelBusy = true;
  const { kind, namespace, name } = state.selected;
  const q = (o) => new URLSearchParams(o).toString();
  try {
    const explained = await getJSON(`/api/explain?${q({ kind, namespace, name })}`);
    $("explain").textContent = explained.text;
    const dns = dnsNameOf(kind, namespace, name);
    const log = await getJSON(`/api/dns/log?${q(kind === "pod" ? { pod: `${namespace}/${name}`, limit: 50 } : { name: dns, limit: 50 })}`);
    $("queries-off").hidden = log.enabled;
    const body = $("queries").tBodies[0];
    body.replaceChildren(...log.entries.filter((e) => !e.event).reverse().map((e) => el("tr", {},
      el("td", {}, new Date(e.time * 1000).toLocaleTimeString()), el("td", {}, e.pod || e.client),
      el("td", {}, e.name), el("td", {}, e.type), el("td", {}, e.rcode),
      el("td", {}, e.answers.map((a) => a.split(" ").slice(2).join(" ")).join(", ")), el("td", {}, String(e.latencyMs)))));
    const traces = await getJSON(`/api/traces?${q(kind === "pod" ? { pod: `${namespace}/${name}` } : { service: `${namespace}/${name}` })}`);
    $("traces").replaceChildren(...traces.traces.slice(-5).reverse().map((t) => el("div", { class: "trace" },
      el("div", {}, `${new Date(t.start * 1000).toLocaleTimeString()} ${t.subject}: ${t.totalMs} ms`),
      ...t.steps.map((s) => el("div", { class: "step" }, el("span", {}, s.step), el("span", {}, `+${s.afterPreviousMs} ms`), el("span", { class: "dns" }, s.detail))))));
    if (!traces.traces.length) $("traces").append(el("div", { class: "note" }, "none yet"));
  } catch (error) {
    $("explain").textContent = String(error);
  } finally {
    panelBusy = false;
  }
}

function connect() {
  const source = new EventSource("/api/map/stream");
  source.onopen = () => { $("status").textContent = "live"; $("status").className = "status live"; };
  source.onmessage = (event) => { state.doc = JSON.parse(event.data); render(); };
  source.onerror = () => { $("status").textContent = "reconnecting"; $("status").className = "status down"; };
}

$("namespace").addEventListener("change", render);
$("close").addEventListener("click", () => { state.selected = null; $("panel").hidden = true; });
connect();
