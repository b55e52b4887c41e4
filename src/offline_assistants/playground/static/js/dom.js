// Making elements: text always goes in as text nodes, never as HTML. The only HTML the page inserts is Markdown,
// and that passes through DOMPurify first (markdown.js).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  put(el, children);
  return el;
}

function put(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function fill(el, ...children) {
  el.replaceChildren();
  put(el, children);
  return el;
}

export function when(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function bytes(n) { // with a no-break space: a size never wraps between number and unit
  if (n < 1024) return `${n}\u00a0B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}\u00a0KB`;
  return `${(n / 1024 / 1024).toFixed(1)}\u00a0MB`;
}

export function badge(status) {
  return h("span", { class: `badge status-${status}` }, status.replaceAll("_", " "));
}

// A short message at the corner of the screen, read out by screen readers (the region is aria-live).
export function toast(message, kind = "info") {
  const region = document.getElementById("toasts");
  const note = h("div", { class: `toast ${kind}` }, message);
  region.append(note);
  setTimeout(() => note.remove(), kind === "error" ? 8000 : 4000);
}

export function errorText(err) {
  const param = err && err.param ? ` (${err.param})` : "";
  return `${err && err.message ? err.message : String(err)}${param}`;
}

// Runs `work`, showing what went wrong as a toast rather than losing it in the console.
export async function attempt(work) {
  try {
    return await work();
  } catch (err) {
    if (err && err.status !== 401) toast(errorText(err), "error");
    return undefined;
  }
}
