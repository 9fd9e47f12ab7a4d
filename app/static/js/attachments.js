// Files in the conversation, for every page: the tray of files waiting in the composer
// (paperclip, drop and paste; a progress bar, cancel and retry each), the files of a
// message (thumbnails and file cards) and the picture viewer (arrows, Esc).
import { el, t } from "./dom.js";

function readCookie(name) {
  const match = document.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
  return match ? decodeURIComponent(match.slice(name.length + 1)) : null;
}

// The pages prove who they are with their cookie and its CSRF twin; the widget's panel
// with the token it holds (`bearer()`).
export function cookieAuth(xhr) {
  xhr.withCredentials = true;
  xhr.setRequestHeader("X-CSRF-TOKEN", readCookie("csrf_access_token") || "");
}

export function bearerAuth(token) {
  return (xhr) => xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
}

export function humanSize(bytes) {
  if (bytes < 1024) return t("%(n)s bytes", { n: bytes });
  if (bytes < 1024 * 1024) return t("%(n)s KB", { n: Math.round(bytes / 1024) });
  const mb = bytes / (1024 * 1024);
  return t("%(n)s MB", { n: mb >= 10 ? Math.round(mb) : mb.toFixed(1) });
}

// What the server will refuse, said before uploading: the size, and a type that is
// plainly not one of the server's (CHAT_ATTACHMENT_TYPES, on the composer). The server
// judges the bytes; a type the browser does not know is left to it.
const ALIASES = { "application/x-zip-compressed": "application/zip" }; // Windows' name for ZIP

export function precheck(file, maxBytes, types) {
  if (file.size > maxBytes) {
    return t("That file is %(size)s; the limit is %(limit)s.", { size: humanSize(file.size), limit: humanSize(maxBytes) });
  }
  if (file.size === 0) return t("That file is empty.");
  if (file.type && types.size && !types.has(ALIASES[file.type] || file.type)) {
    return t("Files of that type can't be sent. Photos, PDF, text, Office files and ZIP can.");
  }
  return null;
}

export function uploadError(status, error) {
  const code = error && error.code;
  if (code === "too_large" || status === 413) return t("That file is too large.");
  if (code === "unsupported_type" || status === 415) {
    return t("Files of that type can't be sent. Photos, PDF, text, Office files and ZIP can.");
  }
  if (code === "rate_limited") return t("Too many files for now; try again later.");
  if (code === "storage_unavailable") return t("Files can't be stored right now; try again in a moment.");
  if (status === 401) return t("Your session has ended; log in again.");
  if (status === 0) return t("The upload stopped; check the connection.");
  return t("The file could not be uploaded.");
}

// The files waiting in the composer until the message is sent.
export class Tray {
  constructor({ list, maxBytes, types, auth, onChange }) {
    Object.assign(this, { list, maxBytes, types, auth, onChange });
    this.items = [];
  }

  get ready() {
    return this.items.filter((item) => item.attachment).map((item) => item.attachment);
  }

  get busy() {
    return this.items.some((item) => item.xhr);
  }

  get failed() {
    return this.items.some((item) => item.error);
  }

  add(files) {
    for (const file of files) {
      if (this.items.length >= 10) break; // a message carries at most ten
      const item = { file, attachment: null, xhr: null, error: null };
      item.node = this.chip(item);
      this.items.push(item);
      this.list.append(item.node);
      item.error = precheck(file, this.maxBytes, this.types);
      if (item.error) this.show(item);
      else this.upload(item);
    }
    this.changed();
  }

  chip(item) {
    const node = el("li", { className: "chip" });
    node.append(
      el("span", { className: "chip-name", text: item.file.name || t("Pasted picture") }),
      el("span", { className: "chip-size muted", text: humanSize(item.file.size) }),
    );
    const bar = el("progress", { attrs: { max: "100", value: "0" } });
    bar.setAttribute("aria-label", t("Uploading %(name)s", { name: item.file.name || t("Pasted picture") }));
    const status = el("span", { className: "chip-status small" });
    const retry = el("button", { className: "link-button", text: t("Retry"), attrs: { type: "button" } });
    retry.hidden = true;
    retry.addEventListener("click", () => {
      item.error = null;
      this.upload(item);
      this.changed();
    });
    const remove = el("button", { className: "chip-remove", text: "×", attrs: { type: "button" } });
    remove.setAttribute("aria-label", t("Remove %(name)s", { name: item.file.name || t("Pasted picture") }));
    remove.addEventListener("click", () => this.remove(item));
    node.append(bar, status, retry, remove);
    Object.assign(item, { bar, status, retry });
    return node;
  }

  upload(item) {
    const form = new FormData();
    form.append("file", item.file, item.file.name || "pasted.png");
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("POST", "/api/attachments");
    this.auth(xhr);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) item.bar.value = Math.round((event.loaded / event.total) * 100);
    });
    xhr.addEventListener("loadend", () => {
      item.xhr = null;
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        answer = null;
      }
      if (xhr.status === 201 && answer) {
        item.attachment = answer;
        item.bar.value = 100;
      } else if (xhr.status !== 0 || !item.cancelled) {
        item.error = uploadError(xhr.status, answer && answer.error);
      }
      this.show(item);
      this.changed();
    });
    this.show(item);
    xhr.send(form);
  }

  show(item) {
    item.node.classList.toggle("failed", Boolean(item.error));
    item.node.classList.toggle("done", Boolean(item.attachment));
    item.bar.hidden = Boolean(item.error || item.attachment);
    item.status.textContent = item.error || (item.attachment ? t("Ready") : "");
    // Retry is for an upload that stopped; a file the server refused stays refused.
    item.retry.hidden = !item.error || precheck(item.file, this.maxBytes, this.types) !== null;
  }

  remove(item) {
    if (item.xhr) {
      item.cancelled = true;
      item.xhr.abort();
    }
    item.node.remove();
    this.items = this.items.filter((other) => other !== item);
    this.changed();
  }

  // After a send: the files it carried leave the tray; one that failed stays, said as
  // such, until it is retried or removed.
  clearSent() {
    this.items.filter((item) => item.attachment).forEach((item) => item.node.remove());
    this.items = this.items.filter((item) => !item.attachment);
    this.changed();
  }

  changed() {
    this.list.hidden = this.items.length === 0;
    if (this.onChange) this.onChange();
  }
}

// Drop onto `zone` and paste into `input` add files to the tray.
export function acceptFiles({ zone, input, picker, button, tray, enabled }) {
  button.addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => {
    tray.add([...picker.files]);
    picker.value = "";
  });
  const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  zone.addEventListener("dragover", (event) => {
    if (!hasFiles(event) || !enabled()) return;
    event.preventDefault();
    zone.classList.add("dropping");
  });
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("dropping");
  });
  zone.addEventListener("drop", (event) => {
    zone.classList.remove("dropping");
    if (!hasFiles(event) || !enabled()) return;
    event.preventDefault();
    tray.add([...event.dataTransfer.files]);
  });
  input.addEventListener("paste", (event) => {
    const pasted = event.clipboardData ? [...event.clipboardData.files] : [];
    if (!pasted.length || !enabled()) return;
    event.preventDefault();
    tray.add(pasted);
  });
}

// A message's files: pictures as thumbnails that open the viewer, the rest as cards.
// `resolve(url)` gives what the browser may load: the URL itself on the pages (their
// cookie goes with it), a blob URL fetched with the token in the widget's panel.
export function renderFiles(files, resolve) {
  const box = el("div", { className: "files" });
  for (const file of files) {
    if (file.kind === "image") {
      const img = el("img", { attrs: { alt: file.name, width: String(file.width), height: String(file.height) } });
      img.dataset.full = file.url;
      img.dataset.name = file.name;
      const open = el("button", { className: "thumb", attrs: { type: "button" } }, img);
      open.setAttribute("aria-label", t("Open the picture %(name)s", { name: file.name }));
      open.addEventListener("click", () => openViewer(img));
      Promise.resolve(resolve(file.thumbnail_url)).then((src) => { img.src = src; });
      box.append(open);
    } else {
      const card = el("a", { className: "file-card", attrs: { download: file.name } },
        el("span", { className: "file-icon", text: fileIcon(file.content_type), attrs: { "aria-hidden": "true" } }),
        el("span", { className: "file-name", text: file.name }),
        el("span", { className: "file-size", text: humanSize(file.size) }));
      card.setAttribute("aria-label", t("Download %(name)s, %(size)s", { name: file.name, size: humanSize(file.size) }));
      Promise.resolve(resolve(file.url)).then((href) => { card.href = href; });
      box.append(card);
    }
  }
  return box;
}

function fileIcon(type) {
  if (type === "application/pdf") return "PDF";
  if (type.startsWith("text/")) return "TXT";
  if (type.includes("zip")) return "ZIP";
  if (type.includes("sheet") || type.includes("excel")) return "XLS";
  if (type.includes("presentation") || type.includes("powerpoint")) return "PPT";
  return "DOC";
}

// The viewer: one dialog for the page, the pictures of the conversation in order.
let viewer = null;

function openViewer(from) {
  if (!viewer) viewer = buildViewer();
  viewer.show(from);
}

function buildViewer() {
  const image = el("img", { className: "viewer-image", attrs: { alt: "" } });
  const caption = el("p", { className: "viewer-caption" });
  const previous = el("button", { className: "button subtle", text: "←", attrs: { type: "button" } });
  previous.setAttribute("aria-label", t("Previous picture"));
  const next = el("button", { className: "button subtle", text: "→", attrs: { type: "button" } });
  next.setAttribute("aria-label", t("Next picture"));
  const close = el("button", { className: "button", text: t("Close"), attrs: { type: "button" } });
  const dialog = el("dialog", { className: "viewer", attrs: { "aria-label": t("Picture") } },
    image, el("div", { className: "viewer-bar" }, previous, caption, next, close));
  document.body.append(dialog);
  let pictures = [];
  let index = 0;
  const draw = () => {
    const current = pictures[index];
    caption.textContent = t("%(name)s (%(n)s of %(total)s)", { name: current.dataset.name, n: index + 1, total: pictures.length });
    image.alt = current.dataset.name;
    image.src = current.dataset.fullSrc || current.src; // the thumbnail until the full one loads
    Promise.resolve(viewerResolve(current.dataset.full)).then((src) => {
      current.dataset.fullSrc = src;
      if (pictures[index] === current) image.src = src;
    });
    previous.disabled = index === 0;
    next.disabled = index === pictures.length - 1;
  };
  const step = (by) => {
    index = Math.min(pictures.length - 1, Math.max(0, index + by));
    draw();
  };
  previous.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft") step(-1);
    else if (event.key === "ArrowRight") step(1);
  });
  return {
    show(from) {
      pictures = [...document.querySelectorAll("#message-list .files img")];
      index = Math.max(0, pictures.indexOf(from));
      draw();
      dialog.showModal();
      close.focus();
    },
  };
}

// How the viewer loads a full picture (the widget sets a token-carrying loader).
let viewerResolve = (url) => url;
export function setResolver(resolve) {
  viewerResolve = resolve;
}
