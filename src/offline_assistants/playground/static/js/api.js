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

  // Server-sent events (a run's from createRun or submitToolOutputs, a response's from createResponse), as
  // {event, data} objects, for a request sent with stream: true.
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

// Bytes the API serves (a file's, a container file's) as a blob: URL, for images and downloads: fetched with the
// key, so no link ever carries it.
const blobs = new Map();
function blobUrl(path) {
  if (!blobs.has(path)) {
    const url = request("GET", path).then((response) => response.blob()).then((blob) => URL.createObjectURL(blob));
    url.catch(() => blobs.delete(path));
    blobs.set(path, url);
  }
  return blobs.get(path);
}

export const fileUrl = (fileId) => blobUrl(`/files/${encodeURIComponent(fileId)}/content`);

// A file the code interpreter wrote in a container (a container_file_citation).
export const containerFileUrl = (containerId, fileId) =>
  blobUrl(`/containers/${encodeURIComponent(containerId)}/files/${encodeURIComponent(fileId)}/content`);

export async function fileText(fileId) {
  const response = await request("GET", `/files/${encodeURIComponent(fileId)}/content`);
  return response.text();
}

// Saves what `url` (a promise of a blob: URL) holds under `filename`.
export async function saveAs(url, filename) {
  const link = document.createElement("a");
  link.href = await url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
}

export const download = (fileId, filename) => saveAs(fileUrl(fileId), filename || fileId);
