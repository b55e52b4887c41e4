// The Assistants page: list, create, edit (name, model, instructions, tools with their vector stores, function
// tools in a JSON editor checked as you type, temperature, top_p, response_format) and delete.
import { api } from "./api.js";
import { attempt, errorText, h, fill, toast } from "./dom.js";
import { confirmDialog } from "./dialogs.js";
import { checkFunction, checkResponseSchema } from "./schemacheck.js";

export const EXAMPLE_FUNCTION = {
  name: "get_weather",
  description: "The current weather in a city.",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const EXAMPLE_SCHEMA = { name: "answer", schema: { type: "object", properties: { answer: { type: "string" } } } };

export async function assistantsPage(main, assistantId) {
  const assistants = await api.all("/assistants", { order: "desc" }, 200);
  const list = h("nav", { class: "sidebar", "aria-label": "Assistants" },
    h("div", { class: "sidebar-head" }, h("h2", {}, "Assistants"),
      h("a", { class: "button primary", href: "#/assistants/new", id: "new-assistant" }, "New assistant")),
    h("ul", { class: "thread-list" }, assistants.length ? assistants.map((a) => h("li", {},
      h("a", { href: `#/assistants/${a.id}`, "aria-current": a.id === assistantId ? "page" : null },
        h("span", { class: "title" }, a.name || "(unnamed)"), h("span", { class: "meta" }, `${a.id} · ${a.model}`))))
      : h("li", { class: "hint" }, "No assistants yet.")));
  const pane = h("div", { class: "pane" });
  fill(main, h("div", { class: `split ${assistantId ? "has-thread" : ""}` }, list, pane));
  if (!assistantId) {
    fill(pane, h("div", { class: "empty" }, h("p", {}, "Pick an assistant, or create a new one.")));
    return;
  }
  const [current, models, stores] = await Promise.all([
    assistantId === "new" ? null : api.get(`/assistants/${assistantId}`),
    api.get("/models").then((page) => page.data, () => []),
    api.all("/vector_stores", {}, 100).catch(() => []),
  ]);
  fill(pane, editor(current, models, stores));
}

function field(id, label, input, hint) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("p", { class: "hint" }, hint) : null);
}

// A JSON editor whose check runs on every keystroke; `valid()` says whether it can be saved.
export function jsonEditor(id, label, text, check, onChange) {
  const area = h("textarea", { id, class: "json", rows: 8, spellcheck: "false", "aria-describedby": `${id}-check` }, text);
  const status = h("div", { id: `${id}-check`, class: "check", role: "status" });
  const run = () => {
    const { problems } = check(area.value);
    area.setAttribute("aria-invalid", String(problems.length > 0));
    fill(status, problems.length ? h("ul", { class: "problems" }, problems.map((p) => h("li", {}, p))) : "✓ valid");
    status.classList.toggle("bad", problems.length > 0);
    onChange();
  };
  area.addEventListener("input", run);
  const el = h("div", { class: "field" }, h("label", { for: id }, label), area, status);
  return { el, area, run, valid: () => check(area.value).problems.length === 0, value: () => check(area.value).value };
}

function editor(assistant, models, stores) {
  const a = assistant || { tools: [], tool_resources: {}, response_format: "auto" };
  const tools = a.tools || [];
  const has = (type) => tools.some((t) => t.type === type);
  const storeIds = new Set((((a.tool_resources || {}).file_search || {}).vector_store_ids) || []);
  const error = h("div", { class: "form-error", role: "alert" });
  const save = h("button", { type: "submit", class: "primary", id: "save-assistant" }, assistant ? "Save" : "Create");

  const name = h("input", { id: "a-name", value: a.name || "", maxlength: 256 });
  const model = h("input", { id: "a-model", value: a.model || (models[0] && models[0].id) || "gpt-4o", list: "a-models", required: true });
  const instructions = h("textarea", { id: "a-instructions", rows: 5 }, a.instructions || "");
  const temperature = h("input", { id: "a-temperature", type: "number", min: 0, max: 2, step: 0.01, value: a.temperature ?? "" });
  const topP = h("input", { id: "a-top-p", type: "number", min: 0, max: 1, step: 0.01, value: a.top_p ?? "" });
  const code = h("input", { type: "checkbox", id: "a-code", checked: has("code_interpreter") });
  const search = h("input", { type: "checkbox", id: "a-search", checked: has("file_search") });
  const storeBoxes = stores.map((s) => h("input", { type: "checkbox", id: `a-store-${s.id}`, value: s.id, checked: storeIds.has(s.id) }));
  const storeList = h("fieldset", { class: "stores", "aria-label": "Vector stores" }, h("legend", {}, "Vector stores"),
    stores.length ? stores.map((s, i) => h("div", { class: "check-row" }, storeBoxes[i],
      h("label", { for: `a-store-${s.id}` }, s.name || s.id, h("span", { class: "meta" },
        ` ${s.file_counts.completed} file${s.file_counts.completed === 1 ? "" : "s"}`))))
      : h("p", { class: "hint" }, "No vector stores yet: make one under Files."));
  const showStores = () => { storeList.hidden = !search.checked; };
  search.addEventListener("change", showStores);
  showStores();

  const functions = h("div", { class: "functions" });
  const editors = [];
  const refresh = () => { save.disabled = editors.some((e) => !e.valid()) || (format.value === "json_schema" && !schema.valid()); };
  let counter = 0;
  const addFunction = (definition) => {
    const id = `a-function-${counter++}`;
    const ed = jsonEditor(id, "Function (JSON)", JSON.stringify(definition, null, 2), checkFunction, refresh);
    const remove = h("button", { type: "button", class: "link", onclick: () => {
      editors.splice(editors.indexOf(ed), 1); wrapper.remove(); refresh();
    } }, "Remove function");
    const wrapper = h("div", { class: "function-editor" }, ed.el, remove);
    editors.push(ed);
    functions.append(wrapper);
    ed.run();
    return ed;
  };

  const fmt = a.response_format;
  const format = h("select", { id: "a-format" }, ["auto", "json_object", "json_schema"].map((v) =>
    h("option", { value: v, selected: (typeof fmt === "object" && fmt ? fmt.type : fmt || "auto") === v }, v)));
  const schema = jsonEditor("a-schema", "JSON schema", JSON.stringify(
    (fmt && fmt.json_schema) || EXAMPLE_SCHEMA, null, 2), checkResponseSchema, refresh);
  const showSchema = () => { schema.el.hidden = format.value !== "json_schema"; refresh(); };
  format.addEventListener("change", showSchema);

  const body = () => {
    const number = (input) => (input.value === "" ? undefined : Number(input.value));
    const chosen = [];
    if (code.checked) chosen.push({ type: "code_interpreter" });
    if (search.checked) chosen.push({ type: "file_search" });
    for (const ed of editors) chosen.push({ type: "function", function: ed.value() });
    const out = {
      name: name.value || null, model: model.value, instructions: instructions.value || null, tools: chosen,
      temperature: number(temperature), top_p: number(topP),
      response_format: format.value === "auto" ? "auto" : format.value === "json_object" ? { type: "json_object" }
        : { type: "json_schema", json_schema: schema.value() },
    };
    if (search.checked) {
      out.tool_resources = { file_search: { vector_store_ids: storeBoxes.filter((b) => b.checked).map((b) => b.value) } };
    }
    return out;
  };

  const form = h("form", { class: "editor", "aria-label": assistant ? `Edit ${a.name || a.id}` : "New assistant" },
    h("header", { class: "pane-head" }, h("a", { href: "#/assistants", class: "back" }, "← Assistants"),
      h("h2", {}, assistant ? a.name || a.id : "New assistant"), assistant ? h("code", {}, a.id) : null),
    field("a-name", "Name", name),
    field("a-model", "Model", model, "Any name runs on the server's loaded model; the object echoes it."),
    h("datalist", { id: "a-models" }, models.map((m) => h("option", { value: m.id }))),
    field("a-instructions", "Instructions", instructions),
    h("fieldset", { class: "tools" }, h("legend", {}, "Tools"),
      h("div", { class: "check-row" }, code, h("label", { for: "a-code" }, "Code interpreter")),
      h("div", { class: "check-row" }, search, h("label", { for: "a-search" }, "File search")),
      storeList,
      functions,
      h("button", { type: "button", id: "add-function", onclick: () => addFunction(EXAMPLE_FUNCTION).area.focus() }, "Add function")),
    h("div", { class: "row" }, field("a-temperature", "Temperature", temperature), field("a-top-p", "top_p", topP)),
    field("a-format", "Response format", format), schema.el,
    error,
    h("div", { class: "buttons" },
      assistant ? h("button", { type: "button", class: "danger", id: "delete-assistant", onclick: async () => {
        if (!(await confirmDialog(`Delete the assistant ${a.name || a.id}? Its threads stay.`))) return;
        if (await attempt(() => api.del(`/assistants/${a.id}`))) {
          toast("Assistant deleted.");
          location.hash = "#/assistants";
        }
      } }, "Delete") : null,
      save));
  for (const t of tools) if (t.type === "function") addFunction(t.function);
  schema.run();
  showSchema();

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(error);
    try {
      const saved = await api.post(assistant ? `/assistants/${a.id}` : "/assistants", body());
      toast(assistant ? "Saved." : "Assistant created.");
      if (location.hash === `#/assistants/${saved.id}`) window.dispatchEvent(new HashChangeEvent("hashchange"));
      else location.hash = `#/assistants/${saved.id}`;
    } catch (err) {
      fill(error, errorText(err));
    }
  });
  return form;
}
