// The product API as the page uses it: JSON over fetch, the session cookie for
// authentication, and the CSRF header every cookie-authenticated write needs (the value
// of the readable sbx_csrf cookie, which another site can neither read nor set).

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.detail = detail || {};
  }
}

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)sbx_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api(method, path, body, extraHeaders) {
  const headers = { Accept: "application/json", ...(extraHeaders || {}) };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path.startsWith("/") ? path : `${API}/${path}`, init);
  } catch (error) {
    throw new ApiError(0, "NetworkError", "The server cannot be reached. Check your connection and try again.");
  }
  if (response.status === 204) return null;
  let doc = null;
  try {
    doc = await response.json();
  } catch (error) {
    doc = null;
  }
  if (!response.ok) {
    const err = (doc && doc.error) || {};
    throw new ApiError(response.status, err.code || `HTTP${response.status}`,
      err.message || response.statusText, err);
  }
  return doc;
}

export const get = (path) => api("GET", path);
export const post = (path, body, headers) => api("POST", path, body, headers);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

export function q(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function formatSize(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function joinPath(folder, name) {
  return (folder === "/" ? "" : folder) + "/" + name;
}

export function parentOf(path) {
  const cut = path.lastIndexOf("/");
  return cut <= 0 ? "/" : path.slice(0, cut);
}
