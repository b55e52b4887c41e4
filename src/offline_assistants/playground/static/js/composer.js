// The message box: text, files attached for file search or the code interpreter (picked or dropped), which
// assistant runs it, and Send.
import { h, fill, toast } from "./dom.js";

const TOOLS = [["file_search", "File search"], ["code_interpreter", "Code interpreter"]];

export function composer({ assistants, chosen, onSend }) {
  const files = []; // {file, tool}
  const text = h("textarea", { id: "composer-text", rows: 2, placeholder: "Message… (Enter sends, Shift+Enter for a new line)" });
  const assistant = h("select", { id: "composer-assistant" },
    assistants.map((a) => h("option", { value: a.id, selected: a.id === chosen }, a.name || a.id)));
  const chips = h("ul", { class: "chips", "aria-label": "Files to attach" });
  const picker = h("input", { type: "file", multiple: true, class: "visually-hidden", id: "composer-files", tabindex: "-1" });
  const send = h("button", { type: "submit", class: "primary", id: "send" }, "Send");

  function drawChips() {
    fill(chips, files.map((entry, i) => h("li", { class: "chip" }, entry.file.name, " ",
      h("select", { "aria-label": `Tool for ${entry.file.name}`, onchange: (e) => { entry.tool = e.target.value; } },
        TOOLS.map(([value, label]) => h("option", { value, selected: value === entry.tool }, label))),
      h("button", { type: "button", class: "link", "aria-label": `Remove ${entry.file.name}`,
        onclick: () => { files.splice(i, 1); drawChips(); } }, "×"))));
  }

  function add(list) {
    for (const file of list) {
      const code = /\.(csv|xlsx?|tsv|png|jpe?g|gif|py|zip|parquet)$/i.test(file.name);
      files.push({ file, tool: code ? "code_interpreter" : "file_search" });
    }
    drawChips();
  }

  picker.addEventListener("change", () => { add(picker.files); picker.value = ""; });
  const form = h("form", { class: "composer", "aria-label": "New message" },
    h("label", { for: "composer-text", class: "visually-hidden" }, "Message"), text, chips,
    h("div", { class: "composer-bar" },
      h("label", { for: "composer-assistant" }, "Assistant"), assistant,
      h("button", { type: "button", onclick: () => picker.click() }, "Attach files"), picker,
      send));
  form.addEventListener("dragover", (e) => { e.preventDefault(); form.classList.add("dropping"); });
  form.addEventListener("dragleave", () => form.classList.remove("dropping"));
  form.addEventListener("drop", (e) => {
    e.preventDefault();
    form.classList.remove("dropping");
    add(e.dataTransfer.files);
  });
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (send.disabled) return;
    if (!assistant.value) {
      toast("Create an assistant first (Assistants).", "error");
      return;
    }
    if (!text.value.trim() && !files.length) return;
    send.disabled = true;
    const sent = await onSend({ text: text.value, files: [...files], assistantId: assistant.value });
    if (sent) {
      text.value = "";
      files.length = 0;
      drawChips();
    }
    send.disabled = false;
    text.focus();
  });
  return { el: form, focus: () => text.focus(), busy: (on) => { send.disabled = on; } };
}
