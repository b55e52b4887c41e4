// The playground's entry: asks for the API key when the server wants one, then routes #/threads,
// #/conversations, #/assistants and #/files to their pages.
import { api, apiKey, onUnauthorized } from "./api.js";
import { assistantsPage } from "./assistants.js";
import { conversationsPage } from "./conversation.js";
import { keyDialog } from "./dialogs.js";
import { errorText, h, fill } from "./dom.js";
import { filesPage } from "./files.js";
import { threadsPage } from "./thread.js";

const main = document.getElementById("main");
const PAGES = { threads: threadsPage, conversations: conversationsPage, assistants: assistantsPage, files: filesPage };

let asking = null;
function askForKey(reason) {
  asking = asking || keyDialog(reason).then((saved) => {
    asking = null;
    if (saved) route();
  });
  return asking;
}
onUnauthorized((err) => askForKey(apiKey.get() ? `The server refused the key: ${err.message}` : undefined));

async function route() {
  if (location.hash && !location.hash.startsWith("#/")) return; // an in-page anchor, not a page
  const [, page = "threads", id] = location.hash.replace(/^#/, "").split("/");
  const show = PAGES[page] || threadsPage;
  for (const link of document.querySelectorAll("header nav a")) {
    link.setAttribute("aria-current", link.dataset.page === (PAGES[page] ? page : "threads") ? "page" : "false");
  }
  try {
    await show(main, id ? decodeURIComponent(id) : undefined);
  } catch (err) {
    if (err && err.status === 401) {
      fill(main, h("div", { class: "empty" }, h("p", {}, "This server needs an API key."),
        h("button", { class: "primary", onclick: () => askForKey() }, "Enter the API key")));
    } else {
      fill(main, h("div", { class: "empty" }, h("p", { class: "error", role: "alert" }, errorText(err))));
    }
  }
}

document.querySelector("a.skip").addEventListener("click", (e) => { e.preventDefault(); main.focus(); });
document.getElementById("key-button").addEventListener("click", () => askForKey("Change or forget the key this page sends."));
window.addEventListener("hashchange", route);
api.get("/models").then((page) => {
  const model = page.data[0];
  document.getElementById("server-model").textContent = model ? model.id : "";
}, () => {});
route();
