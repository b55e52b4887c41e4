// The Files page: files (upload by picking or dropping, list, delete) and vector stores (create, delete, add
// files, and each file's indexing status with its last_error, followed until it settles).
import { api } from "./api.js";
import { attempt, badge, bytes, h, fill, toast, when } from "./dom.js";
import { confirmDialog, fileDialog } from "./dialogs.js";

// A drop target that is also a button (Enter or Space opens the file picker), so it works from the keyboard.
function dropzone(id, label, onFiles) {
  const picker = h("input", { type: "file", multiple: true, class: "visually-hidden", id: `${id}-input`, tabindex: "-1" });
  const zone = h("button", { type: "button", class: "dropzone", id, onclick: () => picker.click() },
    label, h("span", { class: "hint" }, "Drop files here, or press to choose"));
  picker.addEventListener("change", () => { onFiles([...picker.files]); picker.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dropping"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dropping"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dropping");
    onFiles([...e.dataTransfer.files]);
  });
  return h("div", { class: "drop" }, zone, picker);
}

export async function filesPage(main, storeId) {
  const filesList = h("div", { class: "file-table" });
  const storesList = h("div", {});
  const storePane = h("div", { class: "store-pane" });
  fill(main, h("div", { class: "files-page" },
    h("section", { "aria-label": "Files", class: "card" }, h("h2", {}, "Files"),
      dropzone("file-drop", "Upload files", (files) => uploadAll(files, null, redraw)), filesList),
    h("section", { "aria-label": "Vector stores", class: "card" }, h("h2", {}, "Vector stores"),
      newStoreForm(), storesList, storePane)));

  async function redraw() {
    const [files, stores] = await Promise.all([api.all("/files", { order: "desc" }, 200), api.all("/vector_stores", {}, 100)]);
    fill(filesList, files.length ? table(["Name", "Size", "Purpose", "Created", ""], files.map((f) => [
      h("a", { href: "#", onclick: (e) => { e.preventDefault(); fileDialog(f.id, f.filename); } }, f.filename),
      bytes(f.bytes), f.purpose, when(f.created_at),
      h("button", { class: "link danger", "aria-label": `Delete ${f.filename}`, onclick: async () => {
        if (await confirmDialog(`Delete ${f.filename}?`) && await attempt(() => api.del(`/files/${f.id}`))) redraw();
      } }, "Delete")])) : h("p", { class: "hint" }, "No files yet."));
    fill(storesList, stores.length ? h("ul", { class: "store-list" }, stores.map((s) => h("li", {},
      h("a", { href: `#/files/${s.id}`, "aria-current": s.id === storeId ? "page" : null }, s.name || s.id),
      " ", h("span", { class: "meta" }, `${s.file_counts.completed}/${s.file_counts.total} indexed · ${s.id}`))))
      : h("p", { class: "hint" }, "No vector stores yet."));
  }

  function newStoreForm() {
    const input = h("input", { id: "store-name", placeholder: "Name", required: true });
    const form = h("form", { class: "inline-form", "aria-label": "New vector store" },
      h("label", { for: "store-name", class: "visually-hidden" }, "Vector store name"), input,
      h("button", { type: "submit", class: "primary" }, "Create vector store"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const store = await attempt(() => api.post("/vector_stores", { name: input.value }));
      if (store) location.hash = `#/files/${store.id}`;
    });
    return form;
  }

  await redraw();
  if (storeId) await storeView(storePane, storeId, redraw);
}

function table(head, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

async function uploadAll(files, storeId, then) {
  for (const file of files) {
    const uploaded = await attempt(() => api.upload(file, "assistants"));
    if (!uploaded) continue;
    if (storeId) await attempt(() => api.post(`/vector_stores/${storeId}/files`, { file_id: uploaded.id }));
    toast(`Uploaded ${file.name}.`);
  }
  await then();
}

async function storeView(pane, storeId, redrawAll) {
  const store = await api.get(`/vector_stores/${storeId}`);
  const rows = h("div", { class: "file-table" });
  fill(pane, h("div", { class: "store" },
    h("h3", {}, store.name || store.id, " ", h("code", {}, store.id)),
    dropzone("store-drop", `Add files to ${store.name || store.id}`, (files) => uploadAll(files, storeId, draw)),
    rows,
    h("button", { class: "danger", onclick: async () => {
      if (await confirmDialog(`Delete the vector store ${store.name || store.id}? Its files stay.`)
          && await attempt(() => api.del(`/vector_stores/${storeId}`))) location.hash = "#/files";
    } }, "Delete vector store")));

  let timer = null;
  async function draw() {
    clearTimeout(timer);
    const entries = await attempt(() => api.all(`/vector_stores/${storeId}/files`, {}, 200));
    if (!entries) return;
    const names = new Map(await Promise.all(entries.map((e) =>
      api.get(`/files/${e.id}`).then((f) => [e.id, f.filename], () => [e.id, e.id]))));
    fill(rows, entries.length ? table(["File", "Status", "Size", ""], entries.map((e) => [
      names.get(e.id),
      h("span", { class: "file-status", dataset: { fileId: e.id } }, badge(e.status),
        e.last_error ? h("span", { class: "error" }, ` ${e.last_error.code}: ${e.last_error.message}`) : null),
      bytes(e.usage_bytes),
      h("button", { class: "link danger", "aria-label": `Remove ${names.get(e.id)}`, onclick: async () => {
        if (await attempt(() => api.del(`/vector_stores/${storeId}/files/${e.id}`))) draw();
      } }, "Remove")])) : h("p", { class: "hint" }, "No files in this store yet."));
    if (entries.some((e) => e.status === "in_progress") && pane.isConnected) timer = setTimeout(draw, 700);
    else redrawAll();
  }
  await draw();
}
