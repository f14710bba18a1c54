// Resumable uploads from the browser: hash in a Web Worker, init (the server says which
// chunks it lacks), PUT only those to their signed URLs a few at a time with progress,
// finalize. The session id is kept in localStorage under the user, the destination and
// the content hash, so after a reload (or a crash, or a closed laptop) picking the same
// file again continues where it stopped and sends only the chunks that had not landed.

import { API, ApiError, get, post, del } from "./api.js";

const STORE = "sbx-uploads";
const STREAMS_PER_FILE = 3;
const FILES_AT_ONCE = 2;
const MAX_ATTEMPTS = 6;

function loadRecords() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || "{}");
  } catch (error) {
    return {};
  }
}

function saveRecords(records) {
  localStorage.setItem(STORE, JSON.stringify(records));
}

function putChunk(url, blob, onProgress) {
  // XMLHttpRequest, not fetch: only XHR reports upload progress.
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("PUT", url);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve();
        return;
      }
      let err = {};
      try {
        err = JSON.parse(xhr.responseText).error || {};
      } catch (error) {
        err = {};
      }
      reject(new ApiError(xhr.status, err.code || `HTTP${xhr.status}`, err.message || xhr.statusText));
    };
    xhr.onerror = () => reject(new ApiError(0, "NetworkError", "connection lost"));
    xhr.onabort = () => reject(new ApiError(0, "Paused", "paused"));
    xhr.send(blob);
  });
  return { xhr, promise };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class UploadManager {
  constructor(onChange) {
    this.onChange = onChange;
    this.items = [];
    this.user = null;
    this.chunkSize = null;
    this.worker = null;
    this.hashJobs = new Map();
    this.nextId = 1;
  }

  setUser(user) {
    this.user = user;
    this.changed();
  }

  changed() {
    this.onChange([...this.items]);
  }

  // Unfinished uploads of this user that no item on the page is working on.
  unfinished() {
    if (!this.user) return [];
    const prefix = `${this.user.id}|`;
    const active = new Set(this.items.filter((i) => i.key && i.state !== "done").map((i) => i.key));
    return Object.entries(loadRecords())
      .filter(([key]) => key.startsWith(prefix) && !active.has(key))
      .map(([key, record]) => ({ key, ...record }));
  }

  async discard(key) {
    const records = loadRecords();
    const record = records[key];
    delete records[key];
    saveRecords(records);
    if (record) {
      try {
        await del(`${API}/uploads/${encodeURIComponent(record.uploadId)}`);
      } catch (error) {
        // already expired or finalized elsewhere: nothing left to abort
      }
    }
    this.changed();
  }

  add(file, folder, explicitPath) {
    // A file matching an unfinished upload (name, size, date) goes back to that upload's
    // destination, whatever folder is open now.
    let path = explicitPath;
    if (!path) {
      const match = this.unfinished().find((r) => r.name === file.name && r.size === file.size
        && r.lastModified === file.lastModified);
      path = match ? match.path : (folder === "/" ? "" : folder) + "/" + file.name;
    }
    const item = {
      id: this.nextId++, file, name: file.name, size: file.size, path, state: "queued",
      done: 0, total: file.size, message: "", uploadId: null, key: null, xhrs: new Set(),
      chunksSent: 0, chunksTotal: 0, resumed: false, result: null,
    };
    this.items.push(item);
    this.changed();
    this.pump();
    return item;
  }

  pump() {
    const running = this.items.filter((i) => i.state === "hashing" || i.state === "uploading"
      || i.state === "finishing").length;
    let free = FILES_AT_ONCE - running;
    for (const item of this.items) {
      if (free <= 0) break;
      if (item.state === "queued") {
        free--;
        this.run(item);
      }
    }
  }

  pause(item) {
    if (item.state !== "uploading" && item.state !== "queued") return;
    item.state = "paused";
    item.message = "Paused";
    for (const xhr of item.xhrs) xhr.abort();
    this.changed();
    this.pump();
  }

  resume(item) {
    if (item.state !== "paused" && item.state !== "error") return;
    item.state = "queued";
    item.message = "";
    this.changed();
    this.pump();
  }

  async cancel(item) {
    for (const xhr of item.xhrs) xhr.abort();
    item.state = "cancelled";
    item.message = "Cancelled";
    if (item.key) await this.discard(item.key);
    this.items = this.items.filter((i) => i !== item);
    this.changed();
    this.pump();
  }

  clearFinished() {
    this.items = this.items.filter((i) => i.state !== "done");
    this.changed();
  }

  hash(item) {
    if (!this.worker) {
      this.worker = new Worker("/_app/hash-worker.js");
      this.worker.onmessage = (event) => {
        const job = this.hashJobs.get(event.data.id);
        if (!job) return;
        if (event.data.type === "progress") job.progress(event.data.done);
        else {
          this.hashJobs.delete(event.data.id);
          if (event.data.type === "done") job.resolve(event.data);
          else job.reject(new ApiError(0, "HashFailed", event.data.message));
        }
      };
    }
    return new Promise((resolve, reject) => {
      this.hashJobs.set(item.id, {
        resolve, reject, progress: (done) => {
          item.done = done;
          this.changed();
        },
      });
      this.worker.postMessage({ id: item.id, file: item.file, chunkSize: this.chunkSize });
    });
  }

  async run(item) {
    try {
      if (!this.chunkSize) this.chunkSize = (await get(`${API}/info`)).chunk_size;
      if (!item.digests) {
        item.state = "hashing";
        item.message = "Checking the file";
        item.done = 0;
        this.changed();
        const hashed = await this.hash(item);
        item.digests = hashed.digests;
        item.contentHash = hashed.contentHash;
        item.key = `${this.user.id}|${item.path}|${item.contentHash}`;
      }
      if (item.state === "paused" || item.state === "cancelled") return;
      item.state = "uploading";
      item.message = "";
      const session = await this.openSession(item);
      await this.sendMissing(item, session);
      if (item.state !== "uploading") return;
      item.state = "finishing";
      item.message = "Finishing";
      this.changed();
      const answer = await post(`${API}/uploads/finalize`, { upload_id: item.uploadId });
      this.forget(item.key);
      item.result = answer.file;
      item.state = "done";
      item.done = item.total;
      item.message = answer.file && answer.file.status === "scanning" ? "Uploaded, being scanned" : "Uploaded";
      this.changed();
      if (this.onFinished) this.onFinished(item);
    } catch (error) {
      if (item.state === "paused" || item.state === "cancelled") return;
      item.state = "error";
      item.message = error.message || String(error);
      this.changed();
    } finally {
      this.pump();
    }
  }

  async openSession(item) {
    const record = loadRecords()[item.key];
    if (record) {
      try {
        const session = await get(`${API}/uploads/${encodeURIComponent(record.uploadId)}`);
        item.uploadId = record.uploadId;
        item.resumed = true;
        return session;
      } catch (error) {
        if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 410)) throw error;
        this.forget(item.key);
      }
    }
    const session = await post(`${API}/uploads/init`, {
      path: item.path, size: item.size, chunk_size: this.chunkSize, chunks: item.digests,
      content_hash: item.contentHash, ...(item.file.type ? { content_type: item.file.type } : {}),
    });
    item.uploadId = session.upload_id;
    if (session.missing && session.missing.length) {
      const records = loadRecords();
      records[item.key] = {
        uploadId: session.upload_id, name: item.name, size: item.size, path: item.path,
        lastModified: item.file.lastModified, startedAt: new Date().toISOString(),
      };
      saveRecords(records);
    }
    return session;
  }

  forget(key) {
    const records = loadRecords();
    delete records[key];
    saveRecords(records);
  }

  async sendMissing(item, session) {
    const missing = (session.missing || []).map(Number);
    const urls = new Map(Object.entries(session.urls || {}).map(([k, v]) => [Number(k), v]));
    const size = item.size;
    const chunkSize = this.chunkSize;
    const length = (i) => Math.min(size, (i + 1) * chunkSize) - i * chunkSize;
    const missingBytes = missing.reduce((sum, i) => sum + length(i), 0);
    const landed = size - missingBytes;
    item.chunksTotal = item.digests.length;
    item.done = landed;
    const inflight = new Map();
    const report = () => {
      let sum = landed + item.sentBytes;
      for (const loaded of inflight.values()) sum += loaded;
      item.done = Math.min(size, sum);
      this.changed();
    };
    item.sentBytes = 0;
    report();
    const queue = [...missing];
    const refresh = async () => {
      const fresh = await get(`${API}/uploads/${encodeURIComponent(item.uploadId)}`);
      for (const [k, v] of Object.entries(fresh.urls || {})) urls.set(Number(k), v);
    };
    const worker = async () => {
      while (queue.length && item.state === "uploading") {
        const index = queue.shift();
        const blob = item.file.slice(index * chunkSize, index * chunkSize + length(index));
        for (let attempt = 1; ; attempt++) {
          if (item.state !== "uploading") return;
          if (!urls.has(index)) await refresh();
          const { xhr, promise } = putChunk(urls.get(index), blob, (loaded) => {
            inflight.set(index, loaded);
            report();
          });
          item.xhrs.add(xhr);
          try {
            await promise;
          } catch (error) {
            inflight.delete(index);
            item.xhrs.delete(xhr);
            report();
            if (item.state !== "uploading") return;
            if ((error.status === 403 || error.status === 401) && attempt < MAX_ATTEMPTS) {
              urls.delete(index);            // the signed URL expired: ask for a fresh one
              continue;
            }
            if ((error.status === 0 || error.status >= 500) && attempt < MAX_ATTEMPTS) {
              item.message = "Connection trouble, retrying";
              this.changed();
              await sleep(Math.min(30000, 500 * 2 ** attempt));
              item.message = "";
              continue;
            }
            throw error;
          }
          inflight.delete(index);
          item.xhrs.delete(xhr);
          item.sentBytes += blob.size;
          item.chunksSent++;
          report();
          break;
        }
      }
    };
    await Promise.all(Array.from({ length: STREAMS_PER_FILE }, worker));
  }
}
