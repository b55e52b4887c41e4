// Modal dialogs on the native <dialog>: it traps focus, closes on Escape and gives focus back when it closes.
import { apiKey, download, fileText } from "./api.js";
import { h } from "./dom.js";

function modal(label, ...body) {
  const dialog = h("dialog", { "aria-label": label }, ...body);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

// Resolves true when the user confirms, false when they cancel or press Escape.
export function confirmDialog(message, action = "Delete") {
  return new Promise((resolve) => {
    const dialog = modal("Confirm",
      h("form", { method: "dialog" },
        h("p", {}, message),
        h("div", { class: "buttons" },
          h("button", { value: "cancel", autofocus: true }, "Cancel"),
          h("button", { value: "ok", class: "danger" }, action))));
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"));
  });
}

// Asks for the server's API key and keeps it in this browser (localStorage); `reason` says why it is asked.
export function keyDialog(reason) {
  return new Promise((resolve) => {
    const input = h("input", { type: "password", name: "key", id: "api-key-input", autocomplete: "off",
      value: apiKey.get(), required: true });
    const form = h("form", { method: "dialog" },
      h("h2", {}, "API key"),
      h("p", {}, reason || "This server was started with --api-key."),
      h("label", { for: "api-key-input" }, "Key"), input,
      h("p", { class: "hint" }, "It is kept in this browser only and sent as the Authorization header."),
      h("div", { class: "buttons" },
        h("button", { type: "button", onclick: () => dialog.close("forget") }, "Forget"),
        h("button", { value: "save", class: "primary" }, "Save")));
    const dialog = modal("API key", form);
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "save") apiKey.set(input.value.trim());
      if (dialog.returnValue === "forget") apiKey.set("");
      resolve(dialog.returnValue === "save");
    });
    input.focus();
  });
}

// A cited or listed file, opened: its text when it is text, else a download.
export async function fileDialog(fileId, name) {
  const body = h("pre", { class: "file-text", tabindex: "0" }, "Loading…");
  const dialog = modal(`File ${name}`,
    h("div", { class: "file-view" },
      h("h2", {}, name),
      body,
      h("form", { method: "dialog", class: "buttons" },
        h("button", { type: "button", onclick: () => download(fileId, name) }, "Download"),
        h("button", { value: "close", class: "primary", autofocus: true }, "Close"))));
  try {
    const text = await fileText(fileId);
    body.textContent = text.includes("\u0000") ? "(a binary file: download it to open it)" : text;
  } catch (err) {
    body.textContent = `Could not read the file: ${err.message}`;
  }
  return dialog;
}
