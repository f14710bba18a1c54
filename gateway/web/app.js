// The shardbox web page: log in, browse folders, upload (drag and drop, pause, resume),
// rename, move, delete and restore, versions, share links. Preact + htm from one vendored
// file (gateway/web/vendor), so nothing is built: the browser loads these modules as they are.

import { html, render, useState, useEffect, useRef, useCallback } from "./vendor/htm-preact-3.1.1.js";
import { API, get, post, patch, del, q, formatSize, formatTime, joinPath, parentOf } from "./api.js";
import { UploadManager } from "./uploads.js";

const PAGE_SIZE = 200;

// Routing lives in the address bar (#/files/a/b, #/links, #/trash) so reload and back work.
function readRoute() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, ""));
  if (hash.startsWith("/links")) return { view: "links" };
  if (hash.startsWith("/trash")) return { view: "trash" };
  const path = hash.startsWith("/files") ? hash.slice("/files".length) || "/" : "/";
  return { view: "files", path: path.length > 1 ? path.replace(/\/+$/, "") : "/" };
}

function useRoute() {
  const [route, setRoute] = useState(readRoute());
  useEffect(() => {
    const onHash = () => setRoute(readRoute());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  return route;
}

// One status line for the whole page, read out by screen readers.
function Announcer({ message }) {
  return html`<div class="announcer" role="status" aria-live="polite">${message}</div>`;
}

function ErrorText({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error}</p>`;
}

function Dialog({ title, onClose, children, wide }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    const onCancel = (event) => {
      event.preventDefault();
      onClose();
    };
    dialog.addEventListener("cancel", onCancel);
    return () => dialog.removeEventListener("cancel", onCancel);
  }, []);
  return html`
    <dialog ref=${ref} class=${wide ? "wide" : ""} aria-labelledby="dialog-title">
      <header class="dialog-head">
        <h2 id="dialog-title">${title}</h2>
        <button type="button" class="icon" aria-label="Close" onClick=${onClose}>×</button>
      </header>
      ${children}
    </dialog>`;
}

// ---------------------------------------------------------------------------------------
function Login({ onLoggedIn }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      const answer = await post(`${API}/auth/login`, { username, password });
      onLoggedIn(answer.user);
    } catch (err) {
      setError(err.status === 401 ? "Wrong user name or password."
        : err.status === 429 ? "Too many attempts. Wait a moment and try again." : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`
    <main class="login">
      <h1>shardbox</h1>
      <form onSubmit=${submit} aria-describedby="login-error">
        <label for="username">User name</label>
        <input id="username" name="username" autocomplete="username" required value=${username}
          onInput=${(e) => setUsername(e.target.value)} />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required
          value=${password} onInput=${(e) => setPassword(e.target.value)} />
        <button type="submit" disabled=${busy}>${busy ? "Logging in…" : "Log in"}</button>
        <div id="login-error"><${ErrorText} error=${error} /></div>
      </form>
    </main>`;
}

// ---------------------------------------------------------------------------------------
function Breadcrumbs({ path }) {
  const parts = path === "/" ? [] : path.slice(1).split("/");
  const crumbs = [{ name: "My files", path: "/" }];
  parts.forEach((name, i) => crumbs.push({ name, path: "/" + parts.slice(0, i + 1).join("/") }));
  return html`
    <nav aria-label="Folder path" class="crumbs">
      <ol>
        ${crumbs.map((c, i) => html`<li key=${c.path}>
          ${i === crumbs.length - 1
            ? html`<span aria-current="page">${c.name}</span>`
            : html`<a href=${"#/files" + (c.path === "/" ? "" : encodeURI(c.path))}>${c.name}</a>`}
        </li>`)}
      </ol>
    </nav>`;
}

function StatusBadge({ status }) {
  if (!status || status === "ready") return null;
  const text = { scanning: "scanning", quarantined: "quarantined" }[status] || status;
  return html`<span class=${"badge " + status}>${text}</span>`;
}

// Inline SVG: no icon font or emoji font needed.
function KindIcon({ folder }) {
  return folder
    ? html`<svg class="kind" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">
        <path d="M1 3.5h5l1.5 1.5H15v8.5H1z" fill="#d9a521" stroke="#9a6b00" stroke-width="0.8" /></svg>`
    : html`<svg class="kind" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">
        <path d="M3 1.5h6.5L13 5v9.5H3z" fill="#fff" stroke="#57606a" stroke-width="1" />
        <path d="M9.5 1.5V5H13" fill="none" stroke="#57606a" stroke-width="1" /></svg>`;
}

function FileRow({ entry, onAction }) {
  const isFolder = entry.type === "folder";
  const contentUrl = `${API}/files/${encodeURIComponent(entry.id)}/content`;
  return html`
    <li class="row" data-name=${entry.name}>
      <span class="name">
        <${KindIcon} folder=${isFolder} />
        ${isFolder
          ? html`<a href=${"#/files" + encodeURI(entry.path)}>${entry.name}</a>`
          : html`<a href=${contentUrl} download=${entry.name}>${entry.name}</a>`}
        <${StatusBadge} status=${entry.status} />
      </span>
      <span class="size">${isFolder ? "" : formatSize(entry.size)}</span>
      <span class="date">${formatTime(entry.updated_at)}</span>
      <span class="actions">
        <button type="button" onClick=${() => onAction("share", entry)}
          aria-label=${"Share " + entry.name}>Share</button>
        <button type="button" onClick=${() => onAction("rename", entry)}
          aria-label=${"Rename " + entry.name}>Rename</button>
        <button type="button" onClick=${() => onAction("move", entry)}
          aria-label=${"Move " + entry.name}>Move</button>
        ${isFolder ? null : html`<button type="button" onClick=${() => onAction("versions", entry)}
          aria-label=${"Versions of " + entry.name}>Versions</button>`}
        <button type="button" class="danger" onClick=${() => onAction("delete", entry)}
          aria-label=${"Delete " + entry.name}>Delete</button>
      </span>
    </li>`;
}

function RenameDialog({ entry, onClose, onDone }) {
  const [name, setName] = useState(entry.name);
  const [error, setError] = useState("");
  const submit = async (event) => {
    event.preventDefault();
    try {
      await patch(`${API}/files/${encodeURIComponent(entry.id)}`, { name });
      onDone(`Renamed to ${name}`);
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<${Dialog} title=${"Rename " + entry.name} onClose=${onClose}>
    <form onSubmit=${submit}>
      <label for="rename-name">New name</label>
      <input id="rename-name" value=${name} required onInput=${(e) => setName(e.target.value)} />
      <${ErrorText} error=${error} />
      <div class="buttons"><button type="submit">Rename</button>
        <button type="button" class="secondary" onClick=${onClose}>Cancel</button></div>
    </form>
  <//>`;
}

function MoveDialog({ entry, onClose, onDone }) {
  const [folder, setFolder] = useState(parentOf(entry.path));
  const [error, setError] = useState("");
  const submit = async (event) => {
    event.preventDefault();
    const clean = ("/" + folder.trim()).replace(/\/+/g, "/").replace(/(.)\/$/, "$1");
    try {
      await patch(`${API}/files/${encodeURIComponent(entry.id)}`, { path: joinPath(clean, entry.name) });
      onDone(`Moved ${entry.name} to ${clean}`);
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<${Dialog} title=${"Move " + entry.name} onClose=${onClose}>
    <form onSubmit=${submit}>
      <label for="move-folder">Destination folder</label>
      <input id="move-folder" value=${folder} required onInput=${(e) => setFolder(e.target.value)}
        aria-describedby="move-hint" />
      <p id="move-hint" class="hint">A folder path such as /photos/2024 (created if it does not exist).</p>
      <${ErrorText} error=${error} />
      <div class="buttons"><button type="submit">Move</button>
        <button type="button" class="secondary" onClick=${onClose}>Cancel</button></div>
    </form>
  <//>`;
}

function VersionsDialog({ entry, onClose, onDone }) {
  const [versions, setVersions] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    get(`${API}/files/${encodeURIComponent(entry.id)}/versions`)
      .then((answer) => setVersions(answer.versions || []))
      .catch((err) => setError(err.message));
  }, [entry.id]);
  const restore = async (version) => {
    try {
      await post(`${API}/files/${encodeURIComponent(entry.id)}/versions/${encodeURIComponent(version)}/restore`);
      onDone(`Restored an earlier version of ${entry.name}`);
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<${Dialog} title=${"Versions of " + entry.name} onClose=${onClose}>
    <${ErrorText} error=${error} />
    ${versions === null ? html`<p>Loading…</p>` : html`
      <ul class="versions">
        ${versions.map((v) => html`<li key=${v.version}>
          <span>${formatTime(v.created_at)}</span>
          <span>${formatSize(v.size)}</span>
          ${v.current ? html`<strong>current</strong>`
            : html`<button type="button" onClick=${() => restore(v.version)}>Restore</button>`}
        </li>`)}
      </ul>`}
  <//>`;
}

function linkSummary(link) {
  const parts = [link.permission === "download" ? "can download" : "view only"];
  parts.push(link.expires_at ? `expires ${formatTime(link.expires_at)}` : "no expiry");
  if (link.has_password) parts.push("password");
  parts.push(link.max_downloads ? `${link.downloads || 0} of ${link.max_downloads} downloads`
    : `${link.downloads || 0} downloads`);
  if (link.status && link.status !== "active") parts.push(link.status);
  return parts.join(" · ");
}

function CopyField({ value, label }) {
  const [copied, setCopied] = useState(false);
  const ref = useRef(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch (error) {
      ref.current.select();
      document.execCommand("copy");
    }
    setCopied(true);
  };
  return html`<div class="copy">
    <label for="share-url">${label}</label>
    <div class="copy-row">
      <input id="share-url" ref=${ref} readonly value=${value} onFocus=${(e) => e.target.select()} />
      <button type="button" onClick=${copy}>${copied ? "Copied" : "Copy link"}</button>
    </div>
  </div>`;
}

function ShareDialog({ entry, onClose, announce }) {
  const [permission, setPermission] = useState("view");
  const [expiry, setExpiry] = useState("7");
  const [password, setPassword] = useState("");
  const [maxDownloads, setMaxDownloads] = useState("");
  const [created, setCreated] = useState(null);
  const [links, setLinks] = useState([]);
  const [error, setError] = useState("");
  const load = useCallback(async () => {
    try {
      const answer = await get(`${API}/share_links`);
      setLinks((answer.links || []).filter((l) => l.file && String(l.file.id) === String(entry.id)));
    } catch (err) {
      setError(err.message);
    }
  }, [entry.id]);
  useEffect(() => {
    load();
  }, [load]);
  const submit = async (event) => {
    event.preventDefault();
    setError("");
    const body = { permission };
    if (expiry !== "never") body.expires_at = new Date(Date.now() + Number(expiry) * 86400000).toISOString();
    if (password) body.password = password;
    if (maxDownloads) body.max_downloads = Number(maxDownloads);
    try {
      const link = await post(`${API}/files/${encodeURIComponent(entry.id)}/share_links`, body);
      setCreated(link);
      setPassword("");
      announce("Link created");
      load();
    } catch (err) {
      setError(err.message);
    }
  };
  const revoke = async (link) => {
    try {
      await del(`${API}/share_links/${encodeURIComponent(link.id)}`);
      announce("Link revoked");
      if (created && created.id === link.id) setCreated(null);
      load();
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<${Dialog} title=${"Share " + entry.name} onClose=${onClose} wide=${true}>
    <form onSubmit=${submit} class="share-form">
      <fieldset>
        <legend>People with the link can</legend>
        <label class="inline"><input type="radio" name="permission" value="view"
          checked=${permission === "view"} onChange=${() => setPermission("view")} /> view (no download)</label>
        <label class="inline"><input type="radio" name="permission" value="download"
          checked=${permission === "download"} onChange=${() => setPermission("download")} /> download</label>
      </fieldset>
      <label for="share-expiry">Expires</label>
      <select id="share-expiry" value=${expiry} onChange=${(e) => setExpiry(e.target.value)}>
        <option value="1">in 1 day</option>
        <option value="7">in 7 days</option>
        <option value="30">in 30 days</option>
        <option value="never">never</option>
      </select>
      <label for="share-password">Password (optional)</label>
      <input id="share-password" type="password" autocomplete="new-password" value=${password}
        onInput=${(e) => setPassword(e.target.value)} />
      <label for="share-max">Maximum downloads (optional)</label>
      <input id="share-max" type="number" min="1" inputmode="numeric" value=${maxDownloads}
        onInput=${(e) => setMaxDownloads(e.target.value)} />
      <${ErrorText} error=${error} />
      <div class="buttons"><button type="submit">Create link</button></div>
    </form>
    ${created ? html`<div class="created">
      <${CopyField} value=${created.url} label="New link (shown once: copy it now)" />
    </div>` : null}
    <h3>Active links to this ${entry.type === "folder" ? "folder" : "file"}</h3>
    ${links.length === 0 ? html`<p class="hint">None.</p>` : html`<ul class="links">
      ${links.map((link) => html`<li key=${link.id}>
        <span>${linkSummary(link)}</span>
        <button type="button" class="danger" onClick=${() => revoke(link)}
          aria-label=${"Revoke link " + link.id}>Revoke</button>
      </li>`)}
    </ul>`}
  <//>`;
}

function NewFolderDialog({ folder, onClose, onDone }) {
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const submit = async (event) => {
    event.preventDefault();
    try {
      await post(`${API}/folders`, { path: joinPath(folder, name.trim()) });
      onDone(`Created folder ${name}`);
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<${Dialog} title="New folder" onClose=${onClose}>
    <form onSubmit=${submit}>
      <label for="folder-name">Folder name</label>
      <input id="folder-name" value=${name} required onInput=${(e) => setName(e.target.value)} />
      <${ErrorText} error=${error} />
      <div class="buttons"><button type="submit">Create</button>
        <button type="button" class="secondary" onClick=${onClose}>Cancel</button></div>
    </form>
  <//>`;
}

function DeleteDialog({ entry, onClose, onDone }) {
  const [error, setError] = useState("");
  const confirm = async () => {
    try {
      await del(`${API}/files/${encodeURIComponent(entry.id)}`);
      onDone(`Moved ${entry.name} to the trash`);
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<${Dialog} title=${"Delete " + entry.name + "?"} onClose=${onClose}>
    <p>It goes to the trash, where you can restore it for a while.</p>
    <${ErrorText} error=${error} />
    <div class="buttons"><button type="button" class="danger" onClick=${confirm}>Move to trash</button>
      <button type="button" class="secondary" onClick=${onClose}>Cancel</button></div>
  <//>`;
}

// ---------------------------------------------------------------------------------------
function UploadItem({ item, manager }) {
  const percent = item.total ? Math.floor((item.done / item.total) * 100) : 100;
  const label = item.state === "hashing" ? "checking" : item.state;
  return html`<li class=${"upload " + item.state} data-name=${item.name}>
    <div class="upload-head">
      <span class="name">${item.name}</span>
      <span class="upload-state">${label}${item.state === "uploading" || item.state === "hashing"
        ? ` ${percent}%` : ""}</span>
    </div>
    <progress max="100" value=${percent} aria-label=${"Progress of " + item.name}>${percent}%</progress>
    <div class="upload-foot">
      <span class="hint">${formatSize(item.done)} of ${formatSize(item.total)}${item.message ? " · " + item.message : ""}</span>
      <span class="actions">
        ${item.state === "uploading" || item.state === "queued"
          ? html`<button type="button" onClick=${() => manager.pause(item)}
            aria-label=${"Pause " + item.name}>Pause</button>` : null}
        ${item.state === "paused" || item.state === "error"
          ? html`<button type="button" onClick=${() => manager.resume(item)}
            aria-label=${"Resume " + item.name}>Resume</button>` : null}
        ${item.state !== "done"
          ? html`<button type="button" class="secondary" onClick=${() => manager.cancel(item)}
            aria-label=${"Cancel " + item.name}>Cancel</button>` : null}
      </span>
    </div>
  </li>`;
}

function Unfinished({ record, manager }) {
  const input = useRef(null);
  const pick = (event) => {
    const file = event.target.files[0];
    if (!file) return;
    manager.add(file, parentOf(record.path), record.path);
    event.target.value = "";
  };
  return html`<li class="unfinished" data-name=${record.name}>
    <span><strong>${record.name}</strong> (${formatSize(record.size)}) to ${parentOf(record.path)} was not
      finished. Choose the same file to continue: only the missing parts are sent.</span>
    <span class="actions">
      <label class="button">Choose file<input ref=${input} type="file" class="visually-hidden"
        onChange=${pick} aria-label=${"Choose " + record.name + " again to resume"} /></label>
      <button type="button" class="secondary" onClick=${() => manager.discard(record.key)}
        aria-label=${"Discard the upload of " + record.name}>Discard</button>
    </span>
  </li>`;
}

function Uploads({ items, manager }) {
  const unfinished = manager.unfinished();
  if (!items.length && !unfinished.length) return null;
  return html`<section class="uploads" aria-labelledby="uploads-title">
    <div class="section-head">
      <h2 id="uploads-title">Uploads</h2>
      ${items.some((i) => i.state === "done")
        ? html`<button type="button" class="secondary" onClick=${() => manager.clearFinished()}>
          Clear finished</button>` : null}
    </div>
    <ul>
      ${unfinished.map((r) => html`<${Unfinished} key=${r.key} record=${r} manager=${manager} />`)}
      ${items.map((i) => html`<${UploadItem} key=${i.id} item=${i} manager=${manager} />`)}
    </ul>
  </section>`;
}

// ---------------------------------------------------------------------------------------
function FilesView({ path, manager, announce, refreshKey }) {
  const [listing, setListing] = useState({ items: [], next: null, loading: true });
  const [error, setError] = useState("");
  const [dialog, setDialog] = useState(null);
  const [dragging, setDragging] = useState(false);
  const fileInput = useRef(null);

  const load = useCallback(async (cursor) => {
    setError("");
    try {
      const answer = await get(`${API}/files${q({ path, cursor, limit: PAGE_SIZE })}`);
      setListing((old) => ({
        items: cursor ? [...old.items, ...answer.items] : answer.items, next: answer.next, loading: false,
      }));
    } catch (err) {
      setListing({ items: [], next: null, loading: false });
      setError(err.status === 404 ? `The folder ${path} does not exist.` : err.message);
    }
  }, [path]);
  useEffect(() => {
    setListing({ items: [], next: null, loading: true });
    load(null);
  }, [path, refreshKey]);

  const addFiles = (files) => {
    for (const file of files) manager.add(file, path);
    if (files.length) announce(`${files.length} file${files.length > 1 ? "s" : ""} added to the uploads`);
  };
  const onDrop = (event) => {
    event.preventDefault();
    setDragging(false);
    addFiles([...event.dataTransfer.files]);
  };
  const done = (message) => {
    setDialog(null);
    announce(message);
    load(null);
  };
  const onAction = (kind, entry) => setDialog({ kind, entry });

  return html`<section class=${"files" + (dragging ? " dragging" : "")} aria-labelledby="files-title"
      onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
      onDragLeave=${(e) => { if (e.currentTarget === e.target) setDragging(false); }}
      onDrop=${onDrop}>
    <h2 id="files-title" class="visually-hidden">Files</h2>
    <${Breadcrumbs} path=${path} />
    <div class="toolbar">
      <label class="button primary">Upload files
        <input ref=${fileInput} id="file-input" type="file" multiple class="visually-hidden"
          onChange=${(e) => { addFiles([...e.target.files]); e.target.value = ""; }} /></label>
      <button type="button" onClick=${() => setDialog({ kind: "mkdir" })}>New folder</button>
    </div>
    <p class="drop-hint" id="drop-hint">Drop files here to upload them to this folder.</p>
    <${ErrorText} error=${error} />
    ${listing.loading ? html`<p>Loading…</p>` : error ? null : listing.items.length === 0
      ? html`<p class="empty">This folder is empty.</p>`
      : html`<ul class="listing" aria-label="Contents of this folder">
        <li class="row head" aria-hidden="true"><span class="name">Name</span><span class="size">Size</span>
          <span class="date">Modified</span><span class="actions"></span></li>
        ${listing.items.map((entry) => html`<${FileRow} key=${entry.id} entry=${entry} onAction=${onAction} />`)}
      </ul>`}
    ${listing.next ? html`<button type="button" class="secondary" onClick=${() => load(listing.next)}>
      Show more</button>` : null}
    ${dialog && dialog.kind === "rename" ? html`<${RenameDialog} entry=${dialog.entry}
      onClose=${() => setDialog(null)} onDone=${done} />` : null}
    ${dialog && dialog.kind === "move" ? html`<${MoveDialog} entry=${dialog.entry}
      onClose=${() => setDialog(null)} onDone=${done} />` : null}
    ${dialog && dialog.kind === "versions" ? html`<${VersionsDialog} entry=${dialog.entry}
      onClose=${() => setDialog(null)} onDone=${done} />` : null}
    ${dialog && dialog.kind === "share" ? html`<${ShareDialog} entry=${dialog.entry}
      onClose=${() => { setDialog(null); load(null); }} announce=${announce} />` : null}
    ${dialog && dialog.kind === "delete" ? html`<${DeleteDialog} entry=${dialog.entry}
      onClose=${() => setDialog(null)} onDone=${done} />` : null}
    ${dialog && dialog.kind === "mkdir" ? html`<${NewFolderDialog} folder=${path}
      onClose=${() => setDialog(null)} onDone=${done} />` : null}
  </section>`;
}

function LinksView({ announce }) {
  const [links, setLinks] = useState(null);
  const [error, setError] = useState("");
  const load = async () => {
    try {
      setLinks((await get(`${API}/share_links`)).links || []);
    } catch (err) {
      setError(err.message);
    }
  };
  useEffect(() => {
    load();
  }, []);
  const revoke = async (link) => {
    try {
      await del(`${API}/share_links/${encodeURIComponent(link.id)}`);
      announce("Link revoked");
      load();
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<section aria-labelledby="links-title">
    <h2 id="links-title">Shared links</h2>
    <${ErrorText} error=${error} />
    ${links === null ? html`<p>Loading…</p>` : links.length === 0 ? html`<p class="empty">No active links.</p>`
      : html`<ul class="links">
        ${links.map((link) => html`<li key=${link.id}>
          <span><strong>${(link.file && (link.file.path || link.file.name)) || ""}</strong>
            <br /><span class="hint">${linkSummary(link)}</span></span>
          <button type="button" class="danger" onClick=${() => revoke(link)}
            aria-label=${"Revoke link " + link.id}>Revoke</button>
        </li>`)}
      </ul>`}
  </section>`;
}

function TrashView({ announce }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState("");
  const load = async () => {
    try {
      setItems((await get(`${API}/trash`)).items || []);
    } catch (err) {
      setError(err.message);
    }
  };
  useEffect(() => {
    load();
  }, []);
  const restore = async (entry) => {
    try {
      await post(`${API}/files/${encodeURIComponent(entry.id)}/restore`);
      announce(`Restored ${entry.name}`);
      load();
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<section aria-labelledby="trash-title">
    <h2 id="trash-title">Trash</h2>
    <${ErrorText} error=${error} />
    ${items === null ? html`<p>Loading…</p>` : items.length === 0 ? html`<p class="empty">The trash is empty.</p>`
      : html`<ul class="links">
        ${items.map((entry) => html`<li key=${entry.id}>
          <span><strong>${entry.path || entry.name}</strong>
            <br /><span class="hint">${formatSize(entry.size)}</span></span>
          <button type="button" onClick=${() => restore(entry)}
            aria-label=${"Restore " + entry.name}>Restore</button>
        </li>`)}
      </ul>`}
  </section>`;
}

// ---------------------------------------------------------------------------------------
function App() {
  const [user, setUser] = useState(undefined);
  const [uploads, setUploads] = useState([]);
  const [message, setMessage] = useState("");
  const [refreshKey, setRefreshKey] = useState(0);
  const managerRef = useRef(null);
  if (!managerRef.current) managerRef.current = new UploadManager(setUploads);
  const manager = managerRef.current;
  const route = useRoute();
  const announce = (text) => setMessage(text);

  useEffect(() => {
    get(`${API}/me`).then((answer) => setUser(answer.user)).catch(() => setUser(null));
  }, []);
  useEffect(() => {
    manager.setUser(user || null);
    manager.onFinished = (item) => {
      announce(`${item.name} uploaded`);
      setRefreshKey((k) => k + 1);
    };
  }, [user]);
  useEffect(() => {
    const warn = (event) => {
      if (manager.items.some((i) => ["hashing", "uploading", "finishing"].includes(i.state))) {
        event.preventDefault();
        event.returnValue = "";
      }
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, []);

  if (user === undefined) return html`<p class="loading">Loading…</p>`;
  if (user === null) return html`<${Login} onLoggedIn=${(u) => setUser(u)} />`;

  const logout = async () => {
    try {
      await post(`${API}/auth/logout`);
    } catch (error) {
      // the session may already be gone; the page forgets it either way
    }
    setUser(null);
  };
  return html`
    <header class="top">
      <a class="brand" href="#/files">shardbox</a>
      <nav aria-label="Sections">
        <a href="#/files" aria-current=${route.view === "files" ? "page" : null}>Files</a>
        <a href="#/links" aria-current=${route.view === "links" ? "page" : null}>Shared links</a>
        <a href="#/trash" aria-current=${route.view === "trash" ? "page" : null}>Trash</a>
      </nav>
      <span class="who">${user.name}</span>
      <button type="button" class="secondary" onClick=${logout}>Log out</button>
    </header>
    <main>
      ${route.view === "files" ? html`<${FilesView} path=${route.path} manager=${manager} announce=${announce}
        refreshKey=${refreshKey} />` : null}
      ${route.view === "links" ? html`<${LinksView} announce=${announce} />` : null}
      ${route.view === "trash" ? html`<${TrashView} announce=${announce} />` : null}
      <${Uploads} items=${uploads} manager=${manager} />
    </main>
    <${Announcer} message=${message} />`;
}

render(html`<${App} />`, document.getElementById("app"));
