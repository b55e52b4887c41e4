// One item of a conversation or of a response's output, drawn as the Threads page draws its messages and steps:
// a message (Markdown, citations), a function or custom tool call with its output, the code the interpreter ran
// with its logs and plots, a file search with its results. Live while its response streams.
import { h, fill } from "./dom.js";
import { MessageView } from "./messageview.js";
import { codeCall, functionCall, searchCall } from "./stepview.js";

export const CALLS = ["function_call", "custom_tool_call"];
export const OUTPUTS = ["function_call_output", "custom_tool_call_output"];

// A message item as the Assistants API's message, the shape MessageView draws (annotations pass as they are:
// markdown.js reads both APIs').
function asMessage(item) {
  const content = (item.content || []).map((part) => {
    if (part.type === "input_text" || part.type === "output_text") {
      return { type: "text", text: { value: part.text, annotations: part.annotations || [] } };
    }
    if (part.type === "refusal") return { type: "text", text: { value: part.refusal, annotations: [] } };
    if (part.type === "input_image" && part.file_id) return { type: "image_file", image_file: { file_id: part.file_id } };
    if (part.type === "input_image" && part.image_url) return { type: "image_url", image_url: { url: part.image_url } };
    return { type: "unknown" };
  });
  return { id: item.id, role: item.role, content, status: item.status };
}

// A code_interpreter_call's outputs as a run step's: logs, and images by their file id.
function asCodeCall(item) {
  const outputs = (item.outputs || []).map((out) => {
    if (out.type !== "image") return out;
    const fileId = (/\/files\/([^/]+)\/content/.exec(out.url || "") || [])[1];
    return fileId ? { type: "image", image: { file_id: decodeURIComponent(fileId) } } : null;
  });
  return { code_interpreter: { input: item.code || "", outputs: outputs.filter(Boolean) } };
}

export class ItemView {
  // `outputOf(callId)` is the output a client sent for a call, when one is known.
  constructor(item, { openFile, outputOf = () => undefined }) {
    this.openFile = openFile;
    this.outputOf = outputOf;
    this.message = null;
    this.el = h("div", { class: "item", dataset: { itemId: item.id, type: item.type } });
    this.pending = false;
    this.set(item);
  }

  set(item) {
    this.item = structuredClone(item);
    this.render();
  }

  render() {
    const { item } = this;
    const status = item.status || "completed";
    if (item.type === "message") {
      if (this.message) this.message.set(asMessage(item));
      else {
        this.message = new MessageView(asMessage(item), this.openFile);
        fill(this.el, this.message.el);
      }
      return;
    }
    if (CALLS.includes(item.type)) {
      const output = this.outputOf(item.call_id);
      fill(this.el, functionCall({ function: {
        name: item.name, arguments: item.type === "function_call" ? item.arguments : item.input, output } },
      output === undefined ? status : "completed"));
    } else if (OUTPUTS.includes(item.type)) {
      fill(this.el, h("section", { class: "call call-output", "aria-label": "Function output" },
        h("header", {}, h("span", { class: "tool" }, "Output for "), h("code", {}, item.call_id)),
        h("pre", { class: "logs" }, item.output)));
    } else if (item.type === "code_interpreter_call") {
      fill(this.el, codeCall(asCodeCall(item), status));
    } else if (item.type === "file_search_call") {
      const results = (item.results || []).map((r) => ({
        file_id: r.file_id, file_name: r.filename, score: r.score, content: [{ text: r.text || "" }] }));
      fill(this.el, searchCall({ file_search: { x_query: (item.queries || []).join(" · "), results } }, status,
        this.openFile));
    } else {
      fill(this.el, h("p", { class: "hint" }, `A ${item.type} item.`));
    }
  }

  // A streamed piece: of a message's text, a call's arguments or input, or the interpreter's code.
  delta(kind, piece) {
    if (kind === "text") {
      this.message?.delta({ content: [{ type: "text", text: { value: piece } }] });
      return;
    }
    this.item[kind] = (this.item[kind] || "") + piece;
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }
}
