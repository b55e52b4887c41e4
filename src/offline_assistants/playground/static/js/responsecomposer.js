// The Conversations page's message box: the text, and what each response is made with (model, instructions, the
// code interpreter in an auto container, file search on vector stores, function tools in the JSON editor the
// Assistants page uses), kept in this browser so the next response, and the next visit, send the same.
import { EXAMPLE_FUNCTION, jsonEditor } from "./assistants.js";
import { h, toast } from "./dom.js";
import { INCLUDE } from "./responseview.js";
import { checkFunction } from "./schemacheck.js";

const SETTINGS = "offline-assistants.response-settings";

function saved() {
  try {
    return JSON.parse(localStorage.getItem(SETTINGS)) || {};
  } catch {
    return {};
  }
}

export function responseComposer({ models, stores, onSend }) {
  const last = saved();
  const model = h("input", { id: "r-model", value: last.model || (models[0] && models[0].id) || "gpt-4o",
    list: "r-models", required: true });
  const instructions = h("textarea", { id: "r-instructions", rows: 2 }, last.instructions || "");
  const code = h("input", { type: "checkbox", id: "r-code", checked: Boolean(last.code) });
  const search = h("input", { type: "checkbox", id: "r-search", checked: Boolean(last.search) });
  const chosen = new Set(last.stores || []);
  const storeBoxes = stores.map((s) => h("input", { type: "checkbox", id: `r-store-${s.id}`, value: s.id,
    checked: chosen.has(s.id) }));
  const storeList = h("fieldset", { class: "stores", "aria-label": "Vector stores" }, h("legend", {}, "Vector stores"),
    stores.length ? stores.map((s, i) => h("div", { class: "check-row" }, storeBoxes[i],
      h("label", { for: `r-store-${s.id}` }, s.name || s.id)))
      : h("p", { class: "hint" }, "No vector stores yet: make one under Files."));
  const showStores = () => { storeList.hidden = !search.checked; };
  search.addEventListener("change", showStores);
  showStores();

  const text = h("textarea", { id: "r-text", rows: 2, placeholder: "Message… (Enter sends, Shift+Enter for a new line)" });
  const send = h("button", { type: "submit", class: "primary", id: "send" }, "Send");
  const functions = h("div", { class: "functions" });
  const editors = [];
  const refresh = () => { send.disabled = editors.some((e) => !e.valid()); };
  let counter = 0;
  const addFunction = (definition) => {
    const ed = jsonEditor(`r-function-${counter++}`, "Function (JSON)", JSON.stringify(definition, null, 2),
      checkFunction, refresh);
    const wrapper = h("div", { class: "function-editor" }, ed.el, h("button", { type: "button", class: "link",
      onclick: () => { editors.splice(editors.indexOf(ed), 1); wrapper.remove(); refresh(); } }, "Remove function"));
    editors.push(ed);
    functions.append(wrapper);
    ed.run();
    return ed;
  };
  for (const definition of last.functions || []) addFunction(definition);

  const settings = () => ({
    model: model.value, instructions: instructions.value, code: code.checked, search: search.checked,
    stores: storeBoxes.filter((b) => b.checked).map((b) => b.value), functions: editors.map((e) => e.value()),
  });
  // What every request of this page's responses carries besides its input and conversation.
  const request = () => {
    const s = settings();
    localStorage.setItem(SETTINGS, JSON.stringify(s));
    const tools = [];
    if (s.code) tools.push({ type: "code_interpreter", container: { type: "auto" } });
    if (s.search) tools.push({ type: "file_search", vector_store_ids: s.stores });
    for (const fn of s.functions) tools.push({ type: "function", ...fn });
    return { model: s.model, instructions: s.instructions || undefined, tools, include: INCLUDE };
  };

  const form = h("form", { class: "composer", "aria-label": "New message" },
    h("details", { class: "settings" }, h("summary", {}, "Model, instructions and tools"),
      h("div", { class: "field" }, h("label", { for: "r-model" }, "Model"), model),
      h("datalist", { id: "r-models" }, models.map((m) => h("option", { value: m.id }))),
      h("div", { class: "field" }, h("label", { for: "r-instructions" }, "Instructions"), instructions),
      h("fieldset", { class: "tools" }, h("legend", {}, "Tools"),
        h("div", { class: "check-row" }, code, h("label", { for: "r-code" }, "Code interpreter")),
        h("div", { class: "check-row" }, search, h("label", { for: "r-search" }, "File search")),
        storeList, functions,
        h("button", { type: "button", id: "add-function", onclick: () => addFunction(EXAMPLE_FUNCTION).area.focus() },
          "Add function"))),
    h("label", { for: "r-text", class: "visually-hidden" }, "Message"), text,
    h("div", { class: "composer-bar" }, send));
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (send.disabled || !text.value.trim()) return;
    if (!model.value) {
      toast("Name a model first (Model, instructions and tools).", "error");
      return;
    }
    send.disabled = true; // until the response has ended (busy)
    if (await onSend(text.value)) text.value = "";
    else refresh();
    text.focus();
  });
  return { el: form, request, focus: () => text.focus(), busy: (on) => (on ? (send.disabled = true) : refresh()) };
}
