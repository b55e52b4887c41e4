// The Conversations page: the list, one conversation's items in order with each response made from this page
// (its output items, details and function-output form), and the composer. A new response streams in
// (POST /v1/responses with `conversation` and stream: true); when it ends the conversation is read again.
//
// The API has no list of a conversation's responses, so this browser keeps the ids of those it made
// (localStorage, per conversation): a response made elsewhere shows as the items it added, without its details.
import { api } from "./api.js";
import { attempt, errorText, h, fill, toast, when } from "./dom.js";
import { conversationList } from "./conversationlist.js";
import { fileDialog } from "./dialogs.js";
import { CALLS, ItemView, OUTPUTS } from "./itemview.js";
import { responseComposer } from "./responsecomposer.js";
import { INCLUDE, ResponseView, isActive } from "./responseview.js";

const KEPT = 100; // response ids kept per conversation
const known = {
  key: (id) => `offline-assistants.responses.${id}`,
  get(id) {
    try {
      return JSON.parse(localStorage.getItem(known.key(id))) || [];
    } catch {
      return [];
    }
  },
  set: (id, ids) => localStorage.setItem(known.key(id), JSON.stringify(ids.slice(-KEPT))),
  add: (id, responseId) => known.set(id, [...known.get(id), responseId]),
};

export async function conversationsPage(main, conversationId) {
  const create = () => attempt(async () => {
    const conversation = await api.post("/conversations", {});
    location.hash = `#/conversations/${conversation.id}`;
  });
  const pane = h("div", { class: "pane" });
  let list = conversationList(conversationId, create);
  const relist = () => { const fresh = conversationList(conversationId, create); list.replaceWith(fresh); list = fresh; };
  fill(main, h("div", { class: `split ${conversationId ? "has-thread" : ""}` }, list, pane));
  if (!conversationId) {
    fill(pane, h("div", { class: "empty" }, h("p", {}, "Pick a conversation, or start a new one.")));
    return;
  }
  await new ConversationView(pane, conversationId, relist).open();
}

class ConversationView {
  constructor(pane, conversationId, relist) {
    this.pane = pane;
    this.id = conversationId;
    this.relist = relist; // draws the list again (a first message gives a conversation its title)
    this.outputs = new Map(); // call_id -> the output a client sent
    this.views = []; // ResponseViews, oldest first
    this.timeline = h("div", { class: "timeline", "aria-live": "off" });
    this.streaming = false;
    // The timeline follows new content while the reader is at its end, not when they have scrolled up.
    this.stick = true;
    this.timeline.addEventListener("scroll", () => {
      const t = this.timeline;
      this.stick = t.scrollHeight - t.scrollTop - t.clientHeight < 48;
    });
    this.timeline.addEventListener("load", () => this.scrollDown(), true);
    this.ctx = {
      openFile: (fileId, name) => fileDialog(fileId, name),
      outputOf: (callId) => this.outputs.get(callId),
      submit: (view, outputs) => this.submitOutputs(view, outputs),
    };
  }

  async open() {
    const [conversation, models, stores] = await Promise.all([
      api.get(`/conversations/${this.id}`),
      api.get("/models").then((page) => page.data, () => []),
      api.all("/vector_stores", {}, 100).catch(() => []),
    ]);
    this.box = responseComposer({ models, stores, onSend: (text) => this.send(text) });
    fill(this.pane,
      h("header", { class: "pane-head" },
        h("a", { href: "#/conversations", class: "back" }, "← Conversations"),
        h("h2", {}, "Conversation ", h("code", {}, conversation.id)),
        h("span", { class: "meta" }, when(conversation.created_at))),
      this.timeline, this.box.el);
    await this.load();
    this.box.focus();
  }

  // The conversation's items, and the responses this browser made in it placed where their output is.
  async load() {
    const items = await api.all(`/conversations/${this.id}/items`, { order: "asc" }, 1000);
    const ids = known.get(this.id);
    const found = await Promise.all(ids.map((id) => api.get(`/responses/${id}`, { "include[]": INCLUDE }).catch(
      (err) => { if (err.status === 404) return null; throw err; })));
    const responses = found.filter(Boolean);
    if (responses.length < ids.length) known.set(this.id, responses.map((r) => r.id)); // deleted ones
    const inputs = await Promise.all(responses.map((r) => api.all(`/responses/${r.id}/input_items`, { order: "asc" }, 100)));
    this.outputs.clear();
    for (const item of [...items, ...inputs.flat()]) if (OUTPUTS.includes(item.type)) this.outputs.set(item.call_id, item.output);
    const calls = new Set([...items, ...responses.flatMap((r) => r.output)].filter((i) => CALLS.includes(i.type))
      .map((i) => i.call_id));

    // A response goes where its first output item is in the conversation; else after the last of its input
    // items there; else (it only answered calls with more calls) after the response before it.
    const position = new Map(items.map((item, i) => [item.id, i]));
    const claimed = new Set();
    const entries = [];
    let previous = -1;
    this.views = responses.map((response, n) => {
      const view = new ResponseView(response, this.ctx);
      const at = (list) => list.map((item) => position.get(item.id)).filter((p) => p !== undefined);
      const out = at(response.output);
      const given = at(inputs[n]);
      previous = out.length ? Math.min(...out) : given.length ? Math.max(...given) + 0.5 : previous + 0.01;
      for (const item of response.output) claimed.add(item.id);
      entries.push({ key: previous, el: view.el });
      return view;
    });
    items.forEach((item, i) => {
      if (claimed.has(item.id) || (OUTPUTS.includes(item.type) && calls.has(item.call_id))) return;
      entries.push({ key: i, el: new ItemView(item, this.ctx).el });
    });
    entries.sort((a, b) => a.key - b.key);
    fill(this.timeline, entries.length ? entries.map((e) => e.el) : h("p", { class: "hint empty-thread" }, "No items yet."));
    this.offerOutputs();
    this.scrollDown();
    const active = responses.find(isActive);
    if (active && !this.streaming) this.poll(active.id);
  }

  // Only the newest response can be continued with its calls' outputs.
  offerOutputs() {
    this.views.forEach((view, i) => view.offerOutputs(i === this.views.length - 1));
  }

  scrollDown() {
    if (this.stick) this.timeline.scrollTop = this.timeline.scrollHeight;
  }

  // Starts a response with `body` (its input); resolves to its events and the first of them, or null if refused.
  async start(body) {
    this.box.busy(true);
    const events = api.stream("/responses", { ...this.box.request(), ...body, conversation: this.id });
    try {
      return { events, first: await events.next() };
    } catch (err) {
      if (err && err.status !== 401) toast(errorText(err), "error");
      this.box.busy(false);
      return null;
    }
  }

  async send(text) {
    const started = await this.start({ input: text });
    if (!started) return false;
    if (this.timeline.querySelector(".empty-thread")) {
      this.timeline.querySelector(".empty-thread").remove();
      this.relist();
    }
    this.stick = true;
    const said = { id: "", type: "message", role: "user", status: "completed", content: [{ type: "input_text", text }] };
    this.timeline.append(new ItemView(said, this.ctx).el);
    this.follow(started);
    return true;
  }

  // The client's part for a response that ended with calls: their outputs, as a new response in the conversation.
  async submitOutputs(view, outputs) {
    for (const o of outputs) this.outputs.set(o.call_id, o.output);
    const started = await this.start({ input: outputs });
    if (!started) {
      for (const o of outputs) this.outputs.delete(o.call_id);
    }
    view.offerOutputs(!started);
    if (started) this.follow(started);
  }

  // Applies a response's events as they arrive; reads the conversation again once the stream ends.
  async follow({ events, first }) {
    this.streaming = true;
    let view = null;
    const apply = ({ event, data }) => {
      if (event === "error") {
        toast(errorText(data.error || data), "error");
      } else if (event === "response.created") {
        known.add(this.id, data.response.id);
        for (const older of this.views) older.offerOutputs(false);
        view = new ResponseView(data.response, this.ctx);
        this.views.push(view);
        this.timeline.append(view.el);
      } else if (view) {
        view.event(event, data);
      }
      this.scrollDown();
    };
    try {
      if (!first.done) apply(first.value);
      for await (const event of events) apply(event);
    } catch (err) {
      toast(errorText(err), "error");
    } finally {
      this.streaming = false;
      this.box.busy(false);
    }
    // A response waiting for outputs is drawn as it stands: reading it again would only wipe outputs being typed.
    if (view && view.openCalls().length) {
      view.offerOutputs(true);
      return;
    }
    await attempt(() => this.load());
  }

  // A response this page is not streaming (a reload while it ran): read it until it settles.
  async poll(responseId) {
    for (let i = 0; i < 600 && this.pane.isConnected; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const response = await attempt(() => api.get(`/responses/${responseId}`, { "include[]": INCLUDE }));
      if (!response) return;
      if (!isActive(response)) {
        await attempt(() => this.load());
        return;
      }
    }
  }
}
