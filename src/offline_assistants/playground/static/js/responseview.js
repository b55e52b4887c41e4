// One response in its conversation: its output items in order, its error, the form that sends the outputs of the
// function calls it ended with, and its details (status, error, usage, model). Its stream's events update it.
import { badge, h, fill, when } from "./dom.js";
import { CALLS, ItemView } from "./itemview.js";

// What the page asks every response to carry: the interpreter's logs and images, the search's results.
export const INCLUDE = ["code_interpreter_call.outputs", "file_search_call.results"];
const ACTIVE = ["queued", "in_progress"];
export const isActive = (response) => ACTIVE.includes(response.status);

function row(label, value) {
  return value === null || value === undefined || value === "" ? null : [h("dt", {}, label), h("dd", {}, value)];
}

// The item field each streamed delta grows.
const DELTAS = {
  "response.output_text.delta": "text",
  "response.function_call_arguments.delta": "arguments",
  "response.custom_tool_call_input.delta": "input",
  "response.code_interpreter_call_code.delta": "code",
};

export class ResponseView {
  // ctx: openFile, outputOf(callId), submit(view, outputs) sends the outputs the form holds.
  constructor(response, ctx) {
    this.ctx = ctx;
    this.items = new Map(); // item id -> ItemView
    this.status = h("span", {});
    this.body = h("div", { class: "run-body" });
    this.error = h("div", { class: "run-error", role: "alert" });
    this.actions = h("div", { class: "run-actions" });
    this.details = h("details", { class: "run-details" });
    this.el = h("section", { class: "run response", dataset: { responseId: response.id },
      "aria-label": `Response ${response.id}` },
    h("header", { class: "run-head" }, h("span", { class: "run-id" }, response.id), this.status),
    this.body, this.error, this.actions, this.details);
    this.waiting = false; // whether the form for its calls' outputs is offered
    this.setResponse(response);
  }

  setResponse(response) {
    this.response = response;
    this.el.dataset.status = response.status;
    fill(this.status, badge(response.status));
    for (const item of response.output || []) this.item(item);
    const err = response.error;
    fill(this.error, err ? [h("strong", {}, err.code), ": ", err.message] : null);
    this.renderDetails();
  }

  item(item) {
    const view = this.items.get(item.id);
    if (view) view.set(item);
    else {
      const fresh = new ItemView(item, this.ctx);
      this.items.set(item.id, fresh);
      this.body.append(fresh.el);
    }
  }

  // The calls it ended with whose outputs no one has sent.
  openCalls() {
    return (this.response.output || []).filter((i) => CALLS.includes(i.type) && this.ctx.outputOf(i.call_id) === undefined);
  }

  // One event of its stream.
  event(kind, data) {
    if (kind === "response.output_item.added" || kind === "response.output_item.done") this.item(data.item);
    else if (DELTAS[kind]) this.items.get(data.item_id)?.delta(DELTAS[kind], data.delta);
    else if (data.response) this.setResponse(data.response);
  }

  // Offers the form for its open calls' outputs (when it is the conversation's newest response), or takes it away.
  offerOutputs(on) {
    const calls = on && this.response.status === "completed" ? this.openCalls() : [];
    this.waiting = calls.length > 0;
    fill(this.actions, calls.length ? this.outputsForm(calls) : null);
    for (const view of this.items.values()) view.render();
  }

  // The client's part, played by hand: one output per call, sent as function_call_output items.
  outputsForm(calls) {
    const fields = calls.map((call, i) => {
      const id = `output-${this.response.id}-${i}`;
      const area = h("textarea", { id, name: call.call_id, rows: 2, required: true, class: "tool-output" });
      const args = call.type === "function_call" ? call.arguments : call.input;
      return { call, area, el: h("div", { class: "field" },
        h("label", { for: id }, "Output of ", h("code", {}, call.name), h("span", { class: "args" }, ` (${args})`)),
        area) };
    });
    const form = h("form", { class: "outputs-form", "aria-label": "Function outputs" },
      h("p", {}, "The response ended with function calls: type what each one returned."),
      fields.map((f) => f.el),
      h("button", { class: "primary", type: "submit" }, "Send outputs"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      form.querySelector("button[type=submit]").disabled = true;
      this.ctx.submit(this, fields.map((f) => ({
        type: f.call.type === "function_call" ? "function_call_output" : "custom_tool_call_output",
        call_id: f.call.call_id, output: f.area.value })));
    });
    return form;
  }

  renderDetails() {
    const r = this.response;
    const usage = r.usage;
    const cached = usage && usage.input_tokens_details ? usage.input_tokens_details.cached_tokens : 0;
    const open = this.details.open;
    fill(this.details,
      h("summary", {}, "Response details"),
      h("dl", {},
        row("ID", h("code", {}, r.id)),
        row("Status", r.status),
        row("Error", r.error ? `${r.error.code}: ${r.error.message}` : null),
        row("Incomplete", r.incomplete_details ? r.incomplete_details.reason : null),
        row("Model", r.model),
        row("Created", when(r.created_at)),
        row("Tokens", usage ? `${usage.input_tokens} input (${cached} cached) + ${usage.output_tokens} output = `
          + `${usage.total_tokens}` : null),
        row("Previous response", r.previous_response_id)));
    this.details.open = open;
  }
}
