// A tool_calls step: code the interpreter ran with its logs and images, file searches with their ranked
// results, function calls with their arguments and outputs. Live while the step streams. The call views are shared
// with the Responses items (itemview.js), which hand them the same shapes.
import { fileUrl } from "./api.js";
import { badge, h, fill } from "./dom.js";
import { codeBlock } from "./highlight.js";

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text || "";
  }
}

function outputImage(fileId, n) {
  const img = h("img", { class: "output-image", alt: `Plot ${n} from the code` });
  fileUrl(fileId).then((url) => { img.src = url; }, () => { img.alt += " (could not be loaded)"; });
  return img;
}

export function codeCall(call, status) {
  const body = call.code_interpreter || {};
  let images = 0;
  return h("section", { class: "call call-code", "aria-label": "Code interpreter" },
    h("header", {}, h("span", { class: "tool" }, "Code interpreter"), badge(status)),
    codeBlock(body.input || "", "python"),
    (body.outputs || []).map((out) => {
      if (out.type === "logs") return h("pre", { class: "logs", "aria-label": "Output" }, out.logs);
      if (out.type === "image") return outputImage(out.image.file_id, ++images);
      return null;
    }));
}

export function searchCall(call, status, openFile) {
  const body = call.file_search || {};
  const results = body.results || [];
  return h("section", { class: "call call-search", "aria-label": "File search" },
    h("header", {}, h("span", { class: "tool" }, "File search"), badge(status)),
    body.x_query !== undefined ? h("p", { class: "query" }, "Query: ", h("q", {}, body.x_query)) : null,
    status === "completed" && !results.length ? h("p", { class: "hint" }, "No passages matched.") : null,
    results.length ? h("ol", { class: "results", "aria-label": "Ranked results" }, results.map((r) => h("li", {},
      h("div", { class: "result-head" },
        h("a", { href: "#", onclick: (e) => { e.preventDefault(); openFile(r.file_id, r.file_name); } }, r.file_name),
        h("span", { class: "score", title: "score" }, Number(r.score).toFixed(3))),
      (r.content || []).length
        ? h("p", { class: "snippet" }, r.content.map((c) => c.text).join(" ").slice(0, 400)) : null))) : null);
}

export function functionCall(call, status) {
  const fn = call.function || {};
  return h("section", { class: "call call-function", "aria-label": `Function ${fn.name}` },
    h("header", {}, h("span", { class: "tool" }, "Function "), h("code", {}, fn.name || ""), badge(status)),
    codeBlock(pretty(fn.arguments), "json"),
    fn.output !== null && fn.output !== undefined
      ? h("div", { class: "function-output" }, h("span", { class: "label" }, "Output"), h("pre", { class: "logs" }, fn.output))
      : h("p", { class: "hint" }, "Waiting for the client's output."));
}

export class StepView {
  constructor(step, openFile) {
    this.openFile = openFile;
    this.el = h("div", { class: "step", dataset: { stepId: step.id } });
    this.pending = false;
    this.set(step);
  }

  set(step) {
    this.step = structuredClone(step);
    this.render();
  }

  render() {
    const { step } = this;
    fill(this.el, (step.step_details.tool_calls || []).map((call) => {
      if (call.type === "code_interpreter") return codeCall(call, step.status);
      if (call.type === "file_search") return searchCall(call, step.status, this.openFile);
      if (call.type === "function") return functionCall(call, step.status);
      return null;
    }),
    step.last_error ? h("p", { class: "error" }, `${step.last_error.code}: ${step.last_error.message}`) : null);
  }

  // A thread.run.step.delta: code and arguments grow as the model writes them.
  delta(delta) {
    const calls = this.step.step_details.tool_calls || (this.step.step_details.tool_calls = []);
    for (const change of (delta.step_details && delta.step_details.tool_calls) || []) {
      const call = calls[change.index] || (calls[change.index] = { type: change.type, [change.type]: {} });
      const body = call[change.type] || (call[change.type] = {});
      const more = change[change.type] || {};
      for (const key of ["input", "arguments"]) if (more[key]) body[key] = (body[key] || "") + more[key];
      if (more.outputs) body.outputs = [...(body.outputs || []), ...more.outputs];
    }
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }
}
