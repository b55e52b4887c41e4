// One run inline in its thread: its steps and messages in order, a Cancel button while it is active, the form
// that answers requires_action by hand, and its details (status, last_error, usage, timings, what the model saw).
import { badge, h, fill } from "./dom.js";
import { MessageView } from "./messageview.js";
import { StepView } from "./stepview.js";

const ACTIVE = ["queued", "in_progress", "requires_action", "cancelling"];
export const isActive = (run) => ACTIVE.includes(run.status);

function row(label, value) {
  return value === null || value === undefined || value === "" ? null : [h("dt", {}, label), h("dd", {}, value)];
}

function seconds(from, to) {
  return from && to ? `${Math.max(to - from, 0)} s` : null;
}

export class RunView {
  constructor(run, ctx) {
    this.ctx = ctx;
    this.steps = new Map(); // step id -> StepView, or the slot of a message_creation step
    this.messages = new Map(); // message id -> MessageView
    this.status = h("span", {});
    this.error = h("div", { class: "run-error", role: "alert" });
    this.body = h("div", { class: "run-body" });
    this.actions = h("div", { class: "run-actions" });
    this.details = h("details", { class: "run-details" });
    this.el = h("section", { class: "run", dataset: { runId: run.id }, "aria-label": `Run ${run.id}` },
      h("header", { class: "run-head" }, h("span", { class: "run-id" }, run.id), this.status),
      this.body, this.error, this.actions, this.details);
    this.setRun(run);
  }

  setRun(run) {
    this.run = run;
    this.el.dataset.status = run.status;
    fill(this.status, badge(run.status));
    const err = run.last_error;
    fill(this.error, err ? [h("strong", {}, err.code), ": ", err.message] : null);
    this.renderActions();
    this.renderDetails();
  }

  renderActions() {
    const { run } = this;
    const cancel = isActive(run) && run.status !== "cancelling"
      ? h("button", { class: "danger cancel", onclick: (e) => { e.target.disabled = true; this.ctx.cancel(run); } },
        "Cancel run") : null;
    const action = run.status === "requires_action" && run.required_action;
    fill(this.actions, action ? this.outputsForm(action.submit_tool_outputs.tool_calls) : null, cancel);
  }

  // The client's part, played by hand: one output per call, then submit_tool_outputs.
  outputsForm(calls) {
    const fields = calls.map((call, i) => {
      const id = `output-${this.run.id}-${i}`;
      const area = h("textarea", { id, name: call.id, rows: 2, required: true, class: "tool-output" });
      return { call, area, el: h("div", { class: "field" },
        h("label", { for: id }, "Output of ", h("code", {}, call.function.name),
          h("span", { class: "args" }, ` (${call.function.arguments})`)), area) };
    });
    const form = h("form", { class: "outputs-form", "aria-label": "Tool outputs" },
      h("p", {}, "The run waits for the client: type what each function returned."),
      fields.map((f) => f.el),
      h("button", { class: "primary", type: "submit" }, "Submit outputs"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      form.querySelector("button[type=submit]").disabled = true;
      this.ctx.submit(this.run, fields.map((f) => ({ tool_call_id: f.call.id, output: f.area.value })));
    });
    return form;
  }

  renderDetails() {
    const { run } = this;
    const x = run.x_details || {};
    const usage = run.usage;
    const window = x.window;
    const cached = x.prompt_tokens
      ? `${x.cached_prompt_tokens} of ${x.prompt_tokens} prompt tokens (${Math.round(100 * x.cached_prompt_tokens / x.prompt_tokens)}%)`
      : null;
    let seen = null;
    if (window) {
      const cut = this.ctx.cutBefore(window.first_message_id);
      seen = h("span", {},
        `${window.messages} message${window.messages === 1 ? "" : "s"} kept, ${cut} older cut`,
        window.tool_exchanges || window.tool_exchanges_cut
          ? `; ${window.tool_exchanges} tool exchange${window.tool_exchanges === 1 ? "" : "s"} kept, ${window.tool_exchanges_cut} cut` : "",
        `; ${window.prompt_tokens} prompt tokens `,
        h("button", { class: "link mark-window", type: "button", "aria-pressed": "false",
          onclick: (e) => {
            const on = e.target.getAttribute("aria-pressed") !== "true";
            e.target.setAttribute("aria-pressed", String(on));
            this.ctx.markWindow(on ? window : null, run.id);
          } }, "Show in thread"));
    }
    const open = this.details.open;
    fill(this.details,
      h("summary", {}, "Run details"),
      h("dl", {},
        row("Status", run.status),
        row("Assistant", run.assistant_id),
        row("Model", run.model),
        row("Last error", run.last_error ? `${run.last_error.code}: ${run.last_error.message}` : null),
        row("Incomplete", run.incomplete_details ? run.incomplete_details.reason : null),
        row("Duration", seconds(run.started_at, run.completed_at || run.failed_at || run.cancelled_at)),
        row("Tokens", usage ? `${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion = ${usage.total_tokens}` : null),
        row("First token", x.time_to_first_token_ms !== null && x.time_to_first_token_ms !== undefined
          ? `${Math.round(x.time_to_first_token_ms)} ms` : null),
        row("Speed", x.tokens_per_second ? `${x.tokens_per_second} tokens/s` : null),
        row("Model calls", x.model_calls || null),
        row("KV cache", cached),
        row("Model saw", seen)));
    this.details.open = open;
  }

  // --- steps and messages, from a listing or from events ---
  step(step) {
    if (step.type === "message_creation") {
      const messageId = step.step_details.message_creation.message_id;
      if (!this.steps.has(step.id)) {
        const slot = h("div", { class: "slot", dataset: { messageId } });
        this.steps.set(step.id, slot);
        this.body.append(slot);
        const view = this.messages.get(messageId);
        if (view) slot.append(view.el);
      }
      return;
    }
    const view = this.steps.get(step.id);
    if (view) view.set(step);
    else {
      const fresh = new StepView(step, this.ctx.openFile);
      this.steps.set(step.id, fresh);
      this.body.append(fresh.el);
    }
  }

  stepDelta(delta) {
    const view = this.steps.get(delta.id);
    if (view instanceof StepView) view.delta(delta.delta);
  }

  message(message) {
    let view = this.messages.get(message.id);
    if (view) view.set(message);
    else {
      view = new MessageView(message, this.ctx.openFile);
      this.messages.set(message.id, view);
      const slot = this.body.querySelector(`.slot[data-message-id="${CSS.escape(message.id)}"]`);
      (slot || this.body).append(view.el);
    }
  }

  messageDelta(delta) {
    const view = this.messages.get(delta.id);
    if (view) view.delta(delta.delta);
  }
}
