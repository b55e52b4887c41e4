// A message's text as safe HTML: Markdown by marked, sanitised by DOMPurify, code highlighted by highlight.js;
// annotations become footnotes (file_citation) and download links (file_path, container_file_citation).
import { Marked } from "../vendor/marked.esm.js";
import DOMPurify from "../vendor/purify.es.js";
import { containerFileUrl, fileUrl, saveAs } from "./api.js";
import { h } from "./dom.js";
import { highlightWithin } from "./highlight.js";

const marked = new Marked({ gfm: true, breaks: true });

// Links open in a new tab without handing it this page; the page's own file links are wired below instead.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.getAttribute("href") && !node.getAttribute("href").startsWith("#oa-file-")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

// Private-use characters around a footnote's number: they survive Markdown untouched and no model writes them.
const CITE = /\uE000(\d+)\uE001/g;
const FILE = /#oa-file-(\d+)/g;

// Where an annotation sits, in code points. Assistants annotations (and the Responses API's
// container_file_citation) give a span; the Responses API's file_citation and file_path give a position, where
// a 【…】 marker, if the text has one, is what the citation replaces.
function span(note, chars) {
  if (note.start_index !== undefined && note.end_index !== undefined) return [note.start_index, note.end_index];
  const start = note.index || 0;
  const close = chars[start] === "\u3010" ? chars.indexOf("\u3011", start) : -1;
  return [start, close > 0 ? close + 1 : start];
}

// Rewrites annotated spans into placeholders, for the annotations of both APIs. Annotation indices count code
// points (the server is Python), so the text is sliced as an array of code points, not UTF-16 units.
function placeholders(value, annotations) {
  const chars = Array.from(value);
  const citations = []; // one footnote per cited file, numbered in order of first citation
  const files = []; // {name, url}: links that download a file the code wrote
  const notes = annotations.map((note) => ({ note, at: span(note, chars) }));
  const replaced = new Map();
  for (const entry of [...notes].sort((a, b) => a.at[0] - b.at[0])) {
    const { note } = entry;
    if (note.type === "file_citation") {
      const fileId = note.file_citation ? note.file_citation.file_id : note.file_id;
      let n = citations.findIndex((c) => c.fileId === fileId);
      if (n < 0) {
        const marked = `${note.text || ""}${note.filename || ""}`.match(/†([^】]+)】/);
        citations.push({ fileId, name: marked ? marked[1] : note.filename || fileId });
        n = citations.length - 1;
      }
      replaced.set(entry, `\uE000${n + 1}\uE001`);
    } else if (note.type === "file_path") {
      const fileId = note.file_path ? note.file_path.file_id : note.file_id;
      files.push({ name: (note.text || fileId).split("/").pop(), url: () => fileUrl(fileId) });
      replaced.set(entry, `#oa-file-${files.length - 1}`);
    } else if (note.type === "container_file_citation") {
      files.push({ name: note.filename, url: () => containerFileUrl(note.container_id, note.file_id) });
      replaced.set(entry, `#oa-file-${files.length - 1}`);
    }
  }
  for (const entry of [...notes].sort((a, b) => b.at[0] - a.at[0])) {
    if (replaced.has(entry)) chars.splice(entry.at[0], entry.at[1] - entry.at[0], replaced.get(entry));
  }
  return { text: chars.join(""), citations, files };
}

function fileLink(file) {
  return h("a", { href: "#", class: "file-link", onclick: (e) => { e.preventDefault(); saveAs(file.url(), file.name); } },
    file.name);
}

function wire(root, citations, files, openFile) {
  for (const link of root.querySelectorAll('a[href^="#oa-file-"]')) {
    const file = files[Number(link.getAttribute("href").slice(9))];
    if (!file) continue;
    link.classList.add("file-link");
    link.addEventListener("click", (e) => { e.preventDefault(); saveAs(file.url(), file.name); });
  }
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const text = node.nodeValue;
    if (!/\uE000|#oa-file-/.test(text)) continue;
    const parts = [];
    let last = 0;
    const pattern = new RegExp(`${CITE.source}|${FILE.source}`, "g");
    for (const match of text.matchAll(pattern)) {
      parts.push(text.slice(last, match.index));
      if (match[1] !== undefined) {
        const n = Number(match[1]);
        const source = citations[n - 1];
        parts.push(h("sup", { class: "cite" }, h("a", {
          href: "#", "aria-label": `Source ${n}: ${source ? source.name : ""}`,
          onclick: (e) => { e.preventDefault(); if (source) openFile(source.fileId, source.name); },
        }, `[${n}]`)));
      } else {
        const file = files[Number(match[2])];
        parts.push(file ? fileLink(file) : match[0]);
      }
      last = match.index + match[0].length;
    }
    parts.push(text.slice(last));
    node.replaceWith(...parts);
  }
}

export function renderMarkdown(value, annotations = [], openFile = () => {}) {
  const { text, citations, files } = placeholders(value, annotations);
  const root = h("div", { class: "markdown" });
  root.innerHTML = DOMPurify.sanitize(marked.parse(text, { async: false }), {
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select"],
  });
  highlightWithin(root);
  wire(root, citations, files, openFile);
  if (citations.length) {
    root.append(h("ol", { class: "footnotes", "aria-label": "Sources" }, citations.map((c) => h("li", {},
      h("a", { href: "#", class: "footnote", onclick: (e) => { e.preventDefault(); openFile(c.fileId, c.name); } },
        c.name)))));
  }
  return root;
}
