// highlight.js core with the few grammars the playground shows (the vendored ES module builds).
import hljs from "../vendor/highlight/core.min.js";
import bash from "../vendor/highlight/bash.min.js";
import javascript from "../vendor/highlight/javascript.min.js";
import json from "../vendor/highlight/json.min.js";
import markdown from "../vendor/highlight/markdown.min.js";
import plaintext from "../vendor/highlight/plaintext.min.js";
import python from "../vendor/highlight/python.min.js";
import sql from "../vendor/highlight/sql.min.js";
import xml from "../vendor/highlight/xml.min.js";

for (const [name, grammar] of Object.entries({ bash, javascript, json, markdown, plaintext, python, sql, xml })) {
  hljs.registerLanguage(name, grammar);
}
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["sh", "shell", "console"], { languageName: "bash" });
hljs.registerAliases(["js"], { languageName: "javascript" });
hljs.registerAliases(["html"], { languageName: "xml" });
hljs.configure({ ignoreUnescapedHTML: true, throwUnescapedHTML: false });

// A highlighted <pre><code>: hljs escapes the source itself, so its output is safe to insert.
export function codeBlock(source, language = "python") {
  const code = document.createElement("code");
  const known = hljs.getLanguage(language) ? language : "plaintext";
  code.className = `hljs language-${known}`;
  code.innerHTML = hljs.highlight(source, { language: known, ignoreIllegals: true }).value;
  const pre = document.createElement("pre");
  pre.className = "code";
  pre.append(code);
  return pre;
}

// Highlights the code blocks Markdown made (their text only: highlightElement reads textContent).
export function highlightWithin(root) {
  for (const block of root.querySelectorAll("pre code")) {
    const named = [...block.classList].find((c) => c.startsWith("language-"));
    if (named && !hljs.getLanguage(named.slice(9))) block.classList.replace(named, "language-plaintext");
    hljs.highlightElement(block);
  }
}
