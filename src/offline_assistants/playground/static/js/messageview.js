// One message: its text as Markdown with its annotations, its images, its attachments; live while it streams.
import { api, fileUrl } from "./api.js";
import { badge, h, fill } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

const ROLE = { user: "You", assistant: "Assistant" };

function image(fileId, alt) {
  const img = h("img", { class: "output-image", alt });
  fileUrl(fileId).then((url) => { img.src = url; }, () => { img.alt = `${alt} (could not be loaded)`; });
  return img;
}

function attachmentChip(attachment) {
  const tools = (attachment.tools || []).map((t) => t.type.replace("_", " ")).join(", ");
  const chip = h("li", { class: "chip" }, attachment.file_id, tools ? ` · ${tools}` : "");
  api.get(`/files/${encodeURIComponent(attachment.file_id)}`).then(
    (file) => fill(chip, file.filename, tools ? ` · ${tools}` : ""), () => {});
  return chip;
}

export class MessageView {
  constructor(message, openFile) {
    this.openFile = openFile;
    this.body = h("div", { class: "message-body" });
    this.note = h("div", { class: "message-note" });
    this.el = h("article", {
      class: `message role-${message.role}`, dataset: { messageId: message.id },
      "aria-label": `${ROLE[message.role] || message.role} message`,
    }, h("header", {}, h("span", { class: "who" }, ROLE[message.role] || message.role)), this.body, this.note);
    this.raw = "";
    this.pending = false;
    this.set(message);
  }

  set(message) {
    this.message = message;
    const parts = message.content || [];
    this.raw = parts.filter((p) => p.type === "text").map((p) => p.text.value).join("\n\n");
    fill(this.body, parts.map((part) => {
      if (part.type === "text") return renderMarkdown(part.text.value, part.text.annotations || [], this.openFile);
      if (part.type === "image_file") return image(part.image_file.file_id, "Image");
      if (part.type === "image_url") return h("img", { class: "output-image", alt: "Image", src: part.image_url.url });
      return null;
    }));
    const attachments = message.attachments || [];
    fill(this.note,
      attachments.length ? h("ul", { class: "chips", "aria-label": "Attachments" }, attachments.map(attachmentChip)) : null,
      message.status === "incomplete"
        ? h("p", { class: "incomplete" }, badge("incomplete"), " ",
          (message.incomplete_details && message.incomplete_details.reason) || "") : null);
    this.el.classList.toggle("streaming", message.status === "in_progress");
  }

  // A thread.message.delta: the text so far is rendered again, at most once a frame.
  delta(delta) {
    for (const part of delta.content || []) {
      if (part.type === "text" && part.text && part.text.value) this.raw += part.text.value;
    }
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      fill(this.body, renderMarkdown(this.raw));
    });
  }
}
