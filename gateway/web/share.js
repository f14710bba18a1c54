// The recipient's page for /share/{token}: asks the same address for its JSON document
// and shows the file (a preview for view links, a download button for download links),
// a password form, or a plain sentence saying why not: revoked or unknown, expired,
// still being scanned. The answer's preview and download addresses are short-lived signed
// URLs, so a <video> can seek (ranged reads) without any header of ours.

import { html, render, useState, useEffect } from "./vendor/htm-preact-3.1.1.js";
import { formatSize } from "./api.js";

const SCAN_RETRY_MS = 5000;
const TEXT_PREVIEW_BYTES = 64 * 1024;
const linkPath = location.pathname.replace(/\/+$/, "");

async function fetchShare(password) {
  const headers = { Accept: "application/json" };
  if (password) headers["X-Share-Password"] = password;
  const response = await fetch(linkPath, { headers, credentials: "same-origin", cache: "no-store" });
  let doc = null;
  try {
    doc = await response.json();
  } catch (error) {
    doc = null;
  }
  return { status: response.status, doc };
}

function TextPreview({ url }) {
  const [text, setText] = useState(null);
  useEffect(() => {
    fetch(url, { headers: { Range: `bytes=0-${TEXT_PREVIEW_BYTES - 1}` } })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(r.statusText))))
      .then(setText)
      .catch(() => setText(""));
  }, [url]);
  if (text === null) return html`<p>Loading the preview…</p>`;
  return html`<pre class="text-preview" tabindex="0" aria-label="Text preview">${text}</pre>`;
}

function Preview({ item }) {
  const type = item.content_type || "";
  const url = item.preview_url;
  if (!url) return null;
  if (type.startsWith("image/")) return html`<img class="preview" src=${url} alt=${item.name} />`;
  if (type.startsWith("video/")) {
    return html`<video class="preview" id="player" src=${url} controls preload="metadata"
      aria-label=${item.name}></video>`;
  }
  if (type.startsWith("audio/")) return html`<audio src=${url} controls preload="metadata" aria-label=${item.name}></audio>`;
  if (type === "application/pdf") return html`<iframe class="preview pdf" src=${url} title=${item.name}></iframe>`;
  if (type.startsWith("text/") || type === "application/json") return html`<${TextPreview} url=${url} />`;
  return html`<p class="hint">There is no preview for this kind of file.</p>`;
}

function FileCard({ item }) {
  return html`<article class="shared-file">
    <h1>${item.name}</h1>
    <p class="hint">${formatSize(item.size)}${item.content_type ? " · " + item.content_type : ""}</p>
    <${Preview} item=${item} />
    ${item.download_url
      ? html`<p><a class="button primary" id="download" href=${item.download_url}>Download</a></p>`
      : html`<p class="hint">The owner allows viewing only.</p>`}
  </article>`;
}

function FolderCard({ doc }) {
  const [open, setOpen] = useState(null);
  return html`<article class="shared-folder">
    <h1>${doc.name}</h1>
    <ul class="links">
      ${(doc.items || []).map((item) => html`<li key=${item.path || item.name}>
        <span><strong>${item.path || item.name}</strong><br />
          <span class="hint">${item.type === "folder" ? "folder" : formatSize(item.size)}</span></span>
        <span class="actions">
          ${item.preview_url ? html`<button type="button" onClick=${() => setOpen(item)}
            aria-label=${"Preview " + item.name}>Preview</button>` : null}
          ${item.download_url ? html`<a class="button" href=${item.download_url}
            aria-label=${"Download " + item.name}>Download</a>` : null}
        </span>
      </li>`)}
    </ul>
    ${open ? html`<${FileCard} item=${open} />` : null}
  </article>`;
}

function PasswordForm({ wrong, onSubmit }) {
  const [password, setPassword] = useState("");
  return html`<form class="password" onSubmit=${(e) => { e.preventDefault(); onSubmit(password); }}>
    <h1>This link is protected</h1>
    <label for="share-password">Password</label>
    <input id="share-password" type="password" autocomplete="off" required value=${password}
      aria-describedby="password-error" onInput=${(e) => setPassword(e.target.value)} />
    <button type="submit">Open</button>
    <p id="password-error" class="error" role="alert">${wrong ? "That password is not right." : ""}</p>
  </form>`;
}

function Notice({ title, text }) {
  return html`<div class="notice" role="alert"><h1>${title}</h1><p>${text}</p></div>`;
}

function SharePage() {
  const [state, setState] = useState({ status: 0 });
  const [password, setPassword] = useState("");
  const load = async (pw) => {
    try {
      setState(await fetchShare(pw));
    } catch (error) {
      setState({ status: -1 });
    }
  };
  useEffect(() => {
    load("");
  }, []);
  useEffect(() => {
    if (state.status !== 425) return undefined;
    const timer = setTimeout(() => load(password), SCAN_RETRY_MS);
    return () => clearTimeout(timer);
  }, [state]);

  const { status, doc } = state;
  const code = doc && doc.error && doc.error.code;
  if (status === 0) return html`<p class="loading">Loading…</p>`;
  if (status === 200 && doc) return doc.type === "folder" ? html`<${FolderCard} doc=${doc} />` : html`<${FileCard} item=${doc} />`;
  if (status === 401) {
    return html`<${PasswordForm} wrong=${Boolean(password)} onSubmit=${(pw) => { setPassword(pw); load(pw); }} />`;
  }
  if (status === 404) {
    return html`<${Notice} title="Link not found"
      text="This link does not exist or has been revoked by its owner." />`;
  }
  if (status === 410) {
    return code === "DownloadLimitReached" || code === "LinkExhausted"
      ? html`<${Notice} title="Download limit reached" text="This link has been used as many times as its owner allowed." />`
      : html`<${Notice} title="Link expired" text="This link has expired. Ask its owner for a new one." />`;
  }
  if (status === 425) {
    return html`<${Notice} title="Being checked"
      text="The file is still being scanned for viruses. This page tries again every few seconds." />`;
  }
  if (status === 429) {
    return html`<${Notice} title="Too many attempts" text="Wait a minute, then reload this page." />`;
  }
  if (status === -1) {
    return html`<${Notice} title="No connection" text="The server cannot be reached. Check your connection and reload." />`;
  }
  return html`<${Notice} title="Something went wrong"
    text=${(doc && doc.error && doc.error.message) || `The server answered ${status}.`} />`;
}

render(html`<${SharePage} />`, document.getElementById("share"));
