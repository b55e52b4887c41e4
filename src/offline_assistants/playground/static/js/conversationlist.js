// Recent conversations (GET /v1/conversations, the listConversations extension), each with the start of its first
// message.
import { api } from "./api.js";
import { h, fill, when } from "./dom.js";

function preview(conversation, title) {
  api.get(`/conversations/${conversation.id}/items`, { limit: 5, order: "asc" }).then((page) => {
    const first = page.data.find((item) => item.type === "message");
    const text = first ? first.content.map((p) => p.text || "").join(" ").trim() : "";
    if (text) fill(title, text.slice(0, 80));
  }, () => {});
}

export function conversationList(activeId, onNew) {
  const list = h("ul", { class: "thread-list" });
  const el = h("nav", { class: "sidebar", "aria-label": "Conversations" },
    h("div", { class: "sidebar-head" }, h("h2", {}, "Conversations"),
      h("button", { class: "primary", id: "new-conversation", onclick: onNew }, "New conversation")),
    list);
  api.get("/conversations", { limit: 30 }).then((page) => {
    if (!page.data.length) fill(list, h("li", { class: "hint" }, "No conversations yet."));
    else fill(list, page.data.map((conversation) => {
      const title = h("span", { class: "title" }, "(empty conversation)");
      preview(conversation, title);
      return h("li", {}, h("a", {
        href: `#/conversations/${conversation.id}`, "aria-current": conversation.id === activeId ? "page" : null,
      }, title, h("span", { class: "meta" }, `${conversation.id} · ${when(conversation.created_at)}`)));
    }));
  }, () => {});
  return el;
}
