// Hashes a File off the main thread: the SHA-256 of each chunk, then the content hash
// (SHA-256 over the raw chunk digests, in order), as /api/v1/uploads/init expects.
// WebCrypto's digest is one-shot, which fits: each chunk is hashed on its own. Where the
// page is not a secure context (plain http on a LAN address) crypto.subtle is missing and
// the vendored hash-wasm SHA-256 takes over.
"use strict";

let wasmHasher = null;

async function sha256(buffer, engine) {
  if (engine !== "wasm" && self.crypto && self.crypto.subtle) {
    return new Uint8Array(await self.crypto.subtle.digest("SHA-256", buffer));
  }
  if (wasmHasher === null) {
    importScripts("vendor/hash-wasm-sha256-4.13.0.umd.min.js");
    wasmHasher = await self.hashwasm.createSHA256();
  }
  wasmHasher.init();
  wasmHasher.update(new Uint8Array(buffer));
  return wasmHasher.digest("binary");
}

function hex(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
  return out;
}

self.onmessage = async (event) => {
  // engine: "auto" (WebCrypto where it exists) or "wasm" (the fallback, chosen by tests).
  const { id, file, chunkSize, engine } = event.data;
  try {
    const count = Math.ceil(file.size / chunkSize);
    const all = new Uint8Array(count * 32);
    const digests = [];
    for (let i = 0; i < count; i++) {
      const start = i * chunkSize;
      const buffer = await file.slice(start, Math.min(file.size, start + chunkSize)).arrayBuffer();
      const digest = await sha256(buffer, engine);
      all.set(digest, i * 32);
      digests.push(hex(digest));
      self.postMessage({ id, type: "progress", done: Math.min(file.size, start + chunkSize) });
    }
    const contentHash = hex(await sha256(all.buffer, engine));
    self.postMessage({ id, type: "done", digests, contentHash, engine: wasmHasher ? "wasm" : "webcrypto" });
  } catch (error) {
    self.postMessage({ id, type: "error", message: String(error && error.message || error) });
  }
};
