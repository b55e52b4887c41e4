// Recent threads (GET /v1/threads, the listThreads extension), each with the start of its first message.
import { api } from "./api.js";
import { h, fill, when } from "./dom.js";

function preview(thread, item) {
  api.get(`/threads/${thread.id}/messages`, { limit: 1, order: "asc" }).then((page) => {
    const first = page.data[0];
    const text = first ? first.content.filter((p) => p.type === "text").map((p) => p.text.value).join(" ") : "";
    if (text) fill(item, text.slice(0, 80));
  }, () => {});
}

export function threadList(activeId, onNew) {
  const list = h("ul", { class: "thread-list" });
  const el = h("nav", { class: "sidebar", "aria-label": "Threads" },
    h("div", { class: "sidebar-head" }, h("h2", {}, "Threads"),
      h("button", { class: "primary", id: "new-thread", onclick: onNew }, "New thread")),
    list);
  api.get("/threads", { limit: 30 }).then((page) => {
    if (!page.data.length) fill(list, h("li", { class: "hint" }, "No threads yet."));
    else fill(list, page.data.map((thread) => {
      const title = h("span", { class: "title" }, "(empty thread)");
      preview(thread, title);
      return h("li", {}, h("a", {
        href: `#/threads/${thread.id}`, "aria-current": thread.id === activeId ? "page" : null,
      }, title, h("span", { class: "meta" }, `${thread.id} · ${when(thread.created_at)}`)));
    }));
  }, () => {});
  return el;
}
