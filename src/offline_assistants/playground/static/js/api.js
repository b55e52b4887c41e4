// The page's only way to the server: the public /v1 API, exactly as a client uses it, with the user's key.

const KEY = "offline-assistants.api-key";

export const apiKey = {
  get: () => localStorage.getItem(KEY) || "",
  set: (value) => (value ? localStorage.setItem(KEY, value) : localStorage.removeItem(KEY)),
};

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `The server answered ${status}.`);
    this.status = status;
    this.type = error.type;
    this.param = error.param;
    this.code = error.code;
  }
}

let unauthorized = () => {};
export function onUnauthorized(handler) {
  unauthorized = handler;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null) continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(name, item);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function request(method, path, { json, form, params } = {}) {
  const headers = { "OpenAI-Beta": "assistants=v2" };
  const key = apiKey.get();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  const response = await fetch(`/v1${path}${query(params)}`, { method, headers, body });
  if (!response.ok) {
    let data = null;
    try {
      data = await response.json();
    } catch {
      // not JSON: the status says enough
    }
    const err = new ApiError(response.status, data);
    if (response.status === 401) unauthorized(err);
    throw err;
  }
  return response;
}

const json = async (response) => response.json();

export const api = {
  get: (path, params) => request("GET", path, { params }).then(json),
  post: (path, body = {}) => request("POST", path, { json: body }).then(json),
  del: (path) => request("DELETE", path).then(json),

  upload(file, purpose = "assistants") {
    const form = new FormData();
    form.append("purpose", purpose);
    form.append("file", file, file.name);
    return request("POST", "/files", { form }).then(json);
  },

  // Every item of a list, following `after` cursors, up to `max`.
  async all(path, params = {}, max = 200) {
    const items = [];
    let after;
    for (;;) {
      const page = await api.get(path, { limit: 100, ...params, after });
      items.push(...page.data);
      if (!page.has_more || items.length >= max || !page.last_id) return items.slice(0, max);
      after = page.last_id;
    }
  },

  // A run's server-sent events (createRun, submitToolOutputs with stream: true), as {event, data} objects.
  async *stream(path, body) {
    const response = await request("POST", path, { json: { ...body, stream: true } });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        let data = "";
        for (const line of frame.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trimStart();
        }
        if (event === "done") return;
        yield { event, data: JSON.parse(data) };
      }
    }
  },
};

// A file's bytes as a blob: URL (images, downloads): fetched with the key, so no link ever carries it.
const blobs = new Map();
export function fileUrl(fileId) {
  if (!blobs.has(fileId)) {
    const url = request("GET", `/files/${encodeURIComponent(fileId)}/content`)
      .then((response) => response.blob())
      .then((blob) => URL.createObjectURL(blob));
    url.catch(() => blobs.delete(fileId));
    blobs.set(fileId, url);
  }
  return blobs.get(fileId);
}

export async function fileText(fileId) {
  const response = await request("GET", `/files/${encodeURIComponent(fileId)}/content`);
  return response.text();
}

export async function download(fileId, filename) {
  const link = document.createElement("a");
  link.href = await fileUrl(fileId);
  link.download = filename || fileId;
  document.body.append(link);
  link.click();
  link.remove();
}
