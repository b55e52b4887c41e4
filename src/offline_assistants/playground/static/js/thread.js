// The Threads page: the list, one thread's timeline (messages, and each run inline with its steps), the composer.
// A new run streams in: its events update the timeline as they arrive; when it ends the thread is read again.
import { api } from "./api.js";
import { attempt, errorText, h, fill, toast, when } from "./dom.js";
import { composer } from "./composer.js";
import { fileDialog } from "./dialogs.js";
import { MessageView } from "./messageview.js";
import { RunView, isActive } from "./runview.js";
import { threadList } from "./threadlist.js";

const CONTENT = "step_details.tool_calls[*].file_search.results[*].content";
const LAST_ASSISTANT = "offline-assistants.assistant";

export async function threadsPage(main, threadId) {
  const newThread = () => attempt(async () => {
    const thread = await api.post("/threads", {});
    location.hash = `#/threads/${thread.id}`;
  });
  const pane = h("div", { class: "pane" });
  let list = threadList(threadId, newThread);
  const relist = () => { const fresh = threadList(threadId, newThread); list.replaceWith(fresh); list = fresh; };
  fill(main, h("div", { class: `split ${threadId ? "has-thread" : ""}` }, list, pane));
  if (!threadId) {
    fill(pane, h("div", { class: "empty" }, h("p", {}, "Pick a thread, or start a new one.")));
    return;
  }
  await new ThreadView(pane, threadId, relist).open();
}

class ThreadView {
  constructor(pane, threadId, relist) {
    this.pane = pane;
    this.threadId = threadId;
    this.relist = relist; // draws the thread list again (a first message gives a thread its title)
    this.runs = new Map(); // run id -> RunView
    this.order = []; // message ids, oldest first
    this.timeline = h("div", { class: "timeline", "aria-live": "off" });
    this.streaming = false;
    // The timeline follows new content while the reader is at its end, not when they have scrolled up.
    this.stick = true;
    this.timeline.addEventListener("scroll", () => {
      const t = this.timeline;
      this.stick = t.scrollHeight - t.scrollTop - t.clientHeight < 48;
    });
    this.timeline.addEventListener("load", () => this.scrollDown(), true); // images change the height
    this.ctx = {
      openFile: (fileId, name) => fileDialog(fileId, name),
      cancel: (run) => this.cancel(run),
      submit: (run, outputs) => this.follow(api.stream(
        `/threads/${this.threadId}/runs/${run.id}/submit_tool_outputs`, { tool_outputs: outputs })),
      cutBefore: (messageId) => Math.max(this.order.indexOf(messageId), 0),
      markWindow: (window, runId) => this.markWindow(window, runId),
    };
  }

  async open() {
    const [thread, assistants] = await Promise.all([
      api.get(`/threads/${this.threadId}`), api.all("/assistants", { order: "desc" }, 100)]);
    this.assistants = assistants;
    const last = localStorage.getItem(LAST_ASSISTANT);
    this.box = composer({
      assistants,
      chosen: assistants.some((a) => a.id === last) ? last : assistants[0] && assistants[0].id,
      onSend: (message) => this.send(message),
    });
    fill(this.pane,
      h("header", { class: "pane-head" },
        h("a", { href: "#/threads", class: "back" }, "← Threads"),
        h("h2", {}, "Thread ", h("code", {}, thread.id)),
        h("span", { class: "meta" }, when(thread.created_at))),
      this.timeline,
      assistants.length ? null : h("p", { class: "hint" }, "No assistant yet: ", h("a", { href: "#/assistants/new" }, "create one"), "."),
      this.box.el);
    await this.load();
    this.box.focus();
  }

  // The whole thread from the API: messages, runs and their steps, in order.
  async load() {
    const t = this.threadId;
    const [messages, runs] = await Promise.all([
      api.all(`/threads/${t}/messages`, { order: "asc" }, 500), api.all(`/threads/${t}/runs`, { order: "asc" }, 200)]);
    const steps = await Promise.all(runs.map((run) =>
      api.all(`/threads/${t}/runs/${run.id}/steps`, { order: "asc", "include[]": CONTENT }, 100)));
    this.order = messages.map((m) => m.id);
    this.runs.clear();
    const byId = new Map(messages.map((m) => [m.id, m]));
    const ownRun = new Map(); // message id -> the run that wrote it
    const after = new Map(); // message id -> runs that wrote nothing, placed after the newest message they saw
    const byTime = []; // runs that wrote nothing and saw nothing: placed by creation time
    runs.forEach((run, i) => {
      const view = new RunView(run, this.ctx);
      this.runs.set(run.id, view);
      const written = messages.filter((m) => m.run_id === run.id);
      for (const step of steps[i]) view.step(step);
      for (const m of written) { view.message(m); ownRun.set(m.id, view); }
      const seen = run.x_details && run.x_details.window && run.x_details.window.last_message_id;
      if (written.length) return;
      if (seen && byId.has(seen)) after.set(seen, [...(after.get(seen) || []), view]);
      else byTime.push(view);
    });
    const items = [];
    const placed = new Set();
    const flush = (before) => {
      while (byTime.length && (before === undefined || byTime[0].run.created_at < before)) items.push(byTime.shift().el);
    };
    for (const message of messages) {
      const view = ownRun.get(message.id);
      if (view) {
        if (!placed.has(view)) { flush(message.created_at); items.push(view.el); placed.add(view); }
      } else {
        flush(message.created_at);
        items.push(new MessageView(message, this.ctx.openFile).el);
      }
      for (const waiting of after.get(message.id) || []) items.push(waiting.el);
    }
    flush();
    fill(this.timeline, items.length ? items : h("p", { class: "hint empty-thread" }, "No messages yet."));
    this.scrollDown();
    const active = runs.find(isActive);
    if (active && !this.streaming && active.status !== "requires_action") this.poll(active.id);
  }

  scrollDown() {
    if (this.stick) this.timeline.scrollTop = this.timeline.scrollHeight;
  }

  async send({ text, files, assistantId }) {
    localStorage.setItem(LAST_ASSISTANT, assistantId);
    const t = this.threadId;
    try {
      const attachments = [];
      for (const entry of files) {
        const file = await api.upload(entry.file, "assistants");
        attachments.push({ file_id: file.id, tools: [{ type: entry.tool }] });
      }
      const message = await api.post(`/threads/${t}/messages`, { role: "user", content: text || " ", attachments });
      if (this.timeline.querySelector(".empty-thread")) {
        this.timeline.querySelector(".empty-thread").remove();
        this.relist();
      }
      this.stick = true;
      this.order.push(message.id);
      this.timeline.append(new MessageView(message, this.ctx.openFile).el);
      this.scrollDown();
    } catch (err) {
      toast(errorText(err), "error");
      return false;
    }
    this.follow(api.stream(`/threads/${t}/runs`, { assistant_id: assistantId }));
    return true;
  }

  // Applies a run's events to the timeline as they arrive; reads the thread again once the stream ends.
  async follow(events) {
    this.streaming = true;
    this.box.busy(true);
    let view = null;
    try {
      for await (const { event, data } of events) {
        if (event === "error") { toast(errorText(data), "error"); continue; }
        if (event.startsWith("thread.run.step.")) {
          view = this.runs.get(data.run_id) || view;
          if (!view) continue;
          if (event === "thread.run.step.delta") view.stepDelta(data);
          else view.step(data);
        } else if (event.startsWith("thread.run.")) {
          view = this.runs.get(data.id);
          if (!view) {
            view = new RunView(data, this.ctx);
            this.runs.set(data.id, view);
            this.timeline.append(view.el);
          } else view.setRun(data);
        } else if (event.startsWith("thread.message.")) {
          view = this.runs.get(data.run_id) || view;
          if (!view) continue;
          if (event === "thread.message.delta") view.messageDelta(data);
          else view.message(data);
        }
        this.scrollDown();
      }
    } catch (err) {
      toast(errorText(err), "error");
    } finally {
      this.streaming = false;
      this.box.busy(false);
    }
    // The stream has drawn a waiting run as it stands: reading it again would only wipe outputs being typed.
    if (view && view.run.status === "requires_action") return;
    await attempt(() => this.load());
  }

  async cancel(run) {
    await attempt(() => api.post(`/threads/${this.threadId}/runs/${run.id}/cancel`));
    if (!this.streaming) this.poll(run.id);
  }

  // A run this page did not start (or a reload mid-run): read it until it settles.
  async poll(runId) {
    for (let i = 0; i < 600 && this.pane.isConnected; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const run = await attempt(() => api.get(`/threads/${this.threadId}/runs/${runId}`));
      if (!run) return;
      this.runs.get(runId)?.setRun(run);
      if (!isActive(run) || run.status === "requires_action") {
        await attempt(() => this.load());
        return;
      }
    }
  }

  // Marks which messages a run's model call saw (kept) and which truncation cut; `null` clears the marks.
  markWindow(window, runId) {
    const first = window ? this.order.indexOf(window.first_message_id) : -1;
    const last = window ? this.order.indexOf(window.last_message_id) : -1;
    for (const el of this.timeline.querySelectorAll("article.message")) {
      const i = this.order.indexOf(el.dataset.messageId);
      el.classList.toggle("window-kept", window !== null && i >= first && i <= last && first >= 0);
      el.classList.toggle("window-cut", window !== null && i >= 0 && i < first);
      el.title = window && i >= 0 && i < first ? `Cut from what ${runId}'s model saw` : "";
    }
    for (const button of this.timeline.querySelectorAll(".mark-window")) {
      if (!button.closest(`[data-run-id="${CSS.escape(runId)}"]`)) button.setAttribute("aria-pressed", "false");
    }
  }
}
