// One conversation on screen, for both pages: the message list, history, sends in
// order with their retries, the composer and its draft, typing and read marks. User
// text is only ever set with textContent: nothing a user typed becomes HTML.
import { dayLabel, el, formatTime, fullDate, linkified, loadWhenVisible, t } from "./dom.js";
import { call } from "./session.js";
import { Tray, acceptFiles, cookieAuth, renderFiles, setResolver } from "./attachments.js";

// Messages from one author within this many minutes read as one group.
const GROUP_MINUTES = 5;

// What a status line says: who resolved or reopened the conversation.
function lineText(line, me) {
  const by = line.by;
  if (line.kind === "assigned" || line.kind === "reply_anyway") return assignmentText(line, me);
  if (line.status === "resolved") {
    if (!by) return t("This conversation was resolved");
    if (by.id === me.id) return t("You resolved this conversation");
    return t("%(name)s resolved this conversation", { name: by.name });
  }
  if (!by) return t("This conversation was reopened");
  if (by.id === me.id) return t("You reopened this conversation");
  if (by.role === "customer") return t("%(name)s wrote again, which reopened this conversation", { name: by.name });
  return t("%(name)s reopened this conversation", { name: by.name });
}

// An assignment line: "Ana assigned this to Ben", "Assigned to Ben automatically".
function assignmentText(line, me) {
  const by = line.by;
  const to = line.assignee;
  const byName = by && by.id === me.id ? null : by && by.name;
  const toName = to && to.id === me.id ? t("you") : to && to.name;
  if (line.kind === "reply_anyway") {
    if (!byName) return t("You replied while %(name)s is assigned", { name: toName });
    if (to && to.id === me.id) return t("%(name)s replied in your conversation", { name: byName });
    return t("%(name)s replied while %(assignee)s is assigned", { name: byName, assignee: to.name });
  }
  if (!by) return to ? t("Assigned to %(name)s automatically", { name: toName }) : t("Given back to the queue");
  if (!to) return byName ? t("%(name)s unassigned this conversation", { name: byName }) : t("You unassigned this conversation");
  if (by.id === to.id) return byName ? t("%(name)s took this conversation", { name: byName }) : t("You took this conversation");
  if (!byName) return t("You assigned this to %(name)s", { name: toName });
  return t("%(name)s assigned this to %(assignee)s", { name: byName, assignee: toName });
}

export function newClientId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

// A list of messages kept in id order, with sends that wait for their ack.
export class MessageList {
  constructor({ list, empty, me }) {
    this.list = list;
    this.empty = empty;
    this.me = me;
    this.byId = new Map();
    this.pending = new Map(); // client_id -> {node, payload}
    this.seenUpTo = 0; // how far the other side has read (Room.seen_up_to, `read` events)
    this.roomId = null; // the room shown: a late ack from another room is not drawn here
    this.lines = new Set();
    // A picture that loads after the list was scrolled to the end grows it: the reader
    // who was at the end stays there.
    const box = list.closest(".messages");
    this.pinned = true;
    if (box) box.addEventListener("scroll", () => { this.pinned = this.isAtBottom(); });
    list.addEventListener("load", () => { if (this.pinned) this.scrollToBottom(); }, true);
  }

  clear() {
    this.list.replaceChildren();
    this.byId.clear();
    this.lines = new Set(); // RoomEvent ids shown (the team's status lines)
    this.pending.clear();
    this.seenUpTo = 0;
    this.refreshEmpty();
  }

  // The other side has read up to `messageId`: the receipt moves on, never back.
  setSeen(messageId) {
    if (!messageId || messageId <= this.seenUpTo) return;
    this.seenUpTo = messageId;
    this.showReceipt();
  }

  // Under the last of my stored messages: "Seen" once the other side has read it,
  // else "Sent". (Sending… and Not sent/Retry are on the pending ones.)
  showReceipt() {
    this.list.querySelectorAll(".receipt").forEach((node) => node.remove());
    const mine = [...this.list.querySelectorAll(".message.mine:not(.note)[data-id]")];
    const last = mine[mine.length - 1];
    if (!last) return;
    const seen = Number(last.dataset.id) <= this.seenUpTo;
    const text = " · " + (seen ? t("Seen") : t("Sent"));
    last.querySelector(".meta").append(el("span", { className: `receipt ${seen ? "seen" : "sent"}`, text }));
  }

  get highestId() {
    return this.byId.size ? Math.max(...this.byId.keys()) : 0;
  }

  get lowestId() {
    return this.byId.size ? Math.min(...this.byId.keys()) : 0;
  }

  refreshEmpty() {
    if (this.empty) this.empty.hidden = this.list.querySelector(".message") !== null;
  }

  // Day separators before the first message of each day, and consecutive messages of
  // one author (within GROUP_MINUTES) grouped: redone after every change, in one pass.
  decorate() {
    this.list.querySelectorAll(":scope > .day").forEach((node) => node.remove());
    let previous = null;
    for (const node of [...this.list.children]) {
      const when = node.dataset.created ? new Date(node.dataset.created) : new Date();
      const day = dayLabel(when);
      if (!previous || previous.day !== day) {
        // A list item like the messages (a list holds only items), its date in a heading-like span.
        const separator = el("li", { className: "day" }, el("span", { text: day }));
        node.before(separator);
      }
      if (node.classList.contains("activity")) {
        previous = { day, when, author: null }; // a status line ends a group
        continue;
      }
      const grouped = previous && previous.day === day && previous.author === node.dataset.author
        && when - previous.when < GROUP_MINUTES * 60000;
      node.classList.toggle("grouped", Boolean(grouped));
      // A note right after a note of the same author keeps its label for screen readers
      // only; after a reply it shows it (the reply said nothing about who sees what).
      const isNote = node.classList.contains("note");
      node.classList.toggle("grouped-note", Boolean(grouped && isNote && previous.note));
      previous = { day, when, author: node.dataset.author, note: isNote };
    }
  }

  render(message, state) {
    const mine = message.author && message.author.id === this.me.id;
    const classes = ["message", mine ? "mine" : "theirs", message.internal ? "note" : "", state || ""];
    const item = el("li", { className: classes.filter(Boolean).join(" ") });
    item.dataset.author = String(message.author.id);
    if (message.created_at) item.dataset.created = message.created_at;
    if (message.internal) {
      const label = mine
        ? t("Your internal note · only the team sees this")
        : t("Internal note by %(name)s · only the team sees this", { name: message.author.name });
      item.append(el("span", { className: "note-label", text: label }));
    } else if (!mine) item.append(el("span", { className: "author", text: message.author.name }));
    if (message.body) item.append(el("p", { className: "body" }, ...linkified(message.body)));
    const files = message.attachments || [];
    if (files.length) item.append(renderFiles(files, this.resolve || ((url) => url)));
    const meta = el("span", { className: "meta" });
    if (message.created_at) {
      const time = el("time", { text: formatTime(message.created_at) });
      time.setAttribute("datetime", message.created_at);
      time.title = fullDate(message.created_at);
      meta.append(time);
    } else meta.textContent = t("Sending…");
    item.append(meta);
    return item;
  }

  // Where a stored node goes: messages by id, and a status line right after the
  // message it followed (`after_message_id`), behind the lines already there.
  placeBefore(key) {
    const keyOf = (child) => {
      if (child.dataset.id) return [Number(child.dataset.id), 0, 0];
      if (child.dataset.line) return [Number(child.dataset.after), 1, Number(child.dataset.line)];
      return null; // day separators and pending sends
    };
    const later = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
    return [...this.list.children].find((child) => {
      const other = keyOf(child);
      return other && later(other, key) > 0;
    }) || this.firstPendingNode();
  }

  // The team's quiet line for a status change (RoomEvent), once, in its place.
  addLine(line) {
    if (this.roomId !== null && line.room_id !== this.roomId) return;
    if (this.lines.has(line.id)) return;
    this.lines.add(line.id);
    const item = el("li", { className: "activity" });
    item.dataset.line = String(line.id);
    item.dataset.after = String(line.after_message_id || 0);
    item.dataset.created = line.created_at;
    const time = el("time", { text: formatTime(line.created_at) });
    time.setAttribute("datetime", line.created_at);
    time.title = fullDate(line.created_at);
    item.append(el("span", { text: lineText(line, this.me) + " · " }), time);
    const stick = this.isAtBottom();
    this.list.insertBefore(item, this.placeBefore([line.after_message_id || 0, 1, line.id]));
    if (!this.batching) this.settle();
    if (stick) this.scrollToBottom();
  }

  // Add a stored message (from history, an ack, or new_message) exactly once.
  add(message) {
    if (this.roomId !== null && message.room_id !== this.roomId) return false;
    if (this.byId.has(message.id)) return false;
    const waiting = message.client_id && this.pending.get(message.client_id);
    const node = this.render(message);
    node.dataset.id = String(message.id);
    if (waiting) {
      waiting.node.remove();
      this.pending.delete(message.client_id);
    }
    const stick = this.isAtBottom();
    this.list.insertBefore(node, this.placeBefore([message.id, 0, 0]));
    this.byId.set(message.id, node);
    if (!this.batching) this.settle();
    if (stick) this.scrollToBottom();
    return true;
  }

  // A page of history at once: separators, groups and the receipt are redone once.
  // `lines`: the team's status lines that fall in the page (none for a customer).
  addAll(messages, lines = []) {
    this.batching = true;
    try {
      messages.forEach((m) => this.add(m));
      lines.forEach((line) => this.addLine(line));
    } finally {
      this.batching = false;
      this.settle();
    }
  }

  settle() {
    this.refreshEmpty();
    this.decorate();
    this.showReceipt();
  }

  firstPendingNode() {
    const first = this.pending.values().next();
    return first.done ? null : first.value.node;
  }

  addPending(payload) {
    const shown = { author: this.me, body: payload.body, internal: payload.internal, attachments: payload.files };
    const node = this.render(shown, "pending");
    this.list.append(node);
    this.pending.set(payload.client_id, { node, payload });
    this.refreshEmpty();
    this.decorate();
    this.scrollToBottom();
  }

  // A send written while offline: it waits, shown as such, until the connection is back.
  markWaiting(clientId) {
    const waiting = this.pending.get(clientId);
    if (waiting) waiting.node.querySelector(".meta").textContent = t("Waits for the connection…");
  }

  failPending(clientId, errorText, retry) {
    const waiting = this.pending.get(clientId);
    if (!waiting) return;
    waiting.node.classList.add("failed");
    const meta = waiting.node.querySelector(".meta");
    meta.replaceChildren(el("span", { text: t("Not sent: %(reason)s", { reason: errorText }) + " " }));
    const button = el("button", { className: "link-button", text: t("Retry"), attrs: { type: "button" } });
    button.addEventListener("click", () => retry(waiting.payload));
    meta.append(button);
  }

  markRetrying(clientId) {
    const waiting = this.pending.get(clientId);
    if (!waiting) return;
    waiting.node.classList.remove("failed");
    waiting.node.querySelector(".meta").textContent = t("Sending…");
  }

  unsent() {
    return [...this.pending.values()].map((p) => p.payload);
  }

  isAtBottom() {
    const box = this.list.closest(".messages");
    return !box || box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  }

  scrollToBottom() {
    const box = this.list.closest(".messages");
    if (box) box.scrollTop = box.scrollHeight;
    this.pinned = true;
  }
}

// A tab's sends go one after another: the server handles each event in a task of its
// own, so two sends written together could be stored in either order (the first one of
// a conversation, which also makes the room, was often overtaken by the second). Each
// send waits for the previous one's answer; a dropped socket starts a fresh queue.
const outboxes = new WeakMap();
const watched = new WeakSet();

function inTurn(socket, work) {
  if (!watched.has(socket)) {
    watched.add(socket);
    socket.on("disconnect", () => outboxes.delete(socket));
  }
  const turn = (outboxes.get(socket) || Promise.resolve()).then(work);
  outboxes.set(socket, turn.catch(() => {}));
  return turn;
}

// What went wrong with a send, in the page's language: the server's messages are
// English, so each error code has its own text here.
export function errorText(error) {
  const code = error && error.code;
  if (code === "rate_limited") return t("Too many messages at once; wait a moment.");
  if (code === "validation_error") return t("The message could not be sent as it is.");
  if (code === "timeout") return t("No answer from the server.");
  if (code === "unauthorized") return t("Your session has ended; log in again.");
  if (code === "forbidden" || code === "not_found") return t("This conversation is not yours.");
  return t("Something went wrong on our side.");
}

// Send with a client_id; on failure keep the text and offer a retry with the same id.
export function sendMessage(socket, list, payload) {
  list.markRetrying(payload.client_id);
  return inTurn(socket, () => sendNow(socket, list, payload));
}

async function sendNow(socket, list, payload) {
  const ack = await call(socket, "send_message", payload);
  if (ack.ok) list.add(ack.message);
  else {
    const reason = errorText(ack.error);
    list.failPending(payload.client_id, reason, (again) => sendMessage(socket, list, again));
  }
  return ack;
}

// The composer: Enter sends, Shift+Enter is a new line; the draft survives reconnects,
// and with a `draftKey` a reload too. While offline it still takes messages when the
// page may queue them (`setEnabled(false, { queue: true })`).
export class Composer {
  constructor({ form, input, counter, button, onSend, onTyping, draftKey }) {
    Object.assign(this, { form, input, counter, button, onSend, onTyping, draftKey });
    this.tray = null; // the files waiting to go with the message (attachments.js)
    this.queueing = false;
    if (draftKey) {
      try {
        input.value = localStorage.getItem(draftKey) || "";
      } catch {
        /* storage blocked: the draft lives as long as the page */
      }
    }
    // The server's limit, in code points (an emoji is one, as the server counts it).
    this.maxBody = Number(input.dataset.maxBody) || 4000;
    this.enabled = false;
    this.noteMode = false; // the admins' "Internal note" switch
    this.lastTyping = 0;
    this.keyHook = null; // a picker over the composer may take keys first (canned.js)
    input.addEventListener("keydown", (event) => {
      if (this.keyHook && this.keyHook(event)) {
        event.preventDefault();
        event.stopPropagation(); // Esc closes the picker, not the composer's focus
        return;
      }
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    input.addEventListener("input", () => {
      this.updateCounter();
      this.saveDraft();
      const now = Date.now();
      if (this.onTyping && this.enabled && now - this.lastTyping > 2500) {
        this.lastTyping = now;
        this.onTyping(true);
      }
    });
    input.addEventListener("blur", () => this.stopTyping());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.updateCounter();
  }

  saveDraft() {
    if (!this.draftKey) return;
    try {
      if (this.input.value) localStorage.setItem(this.draftKey, this.input.value);
      else localStorage.removeItem(this.draftKey);
    } catch {
      /* storage blocked or full: the draft lives as long as the page */
    }
  }

  updateCounter() {
    const length = [...this.input.value.trim()].length;
    this.counter.textContent = `${length} / ${this.maxBody}`;
    this.counter.classList.toggle("over", length > this.maxBody);
    const uploading = Boolean(this.tray && this.tray.busy);
    this.button.disabled = !(this.enabled || this.queueing) || length > this.maxBody || uploading;
  }

  setEnabled(enabled, { queue = false } = {}) {
    this.enabled = enabled;
    this.queueing = !enabled && queue;
    this.updateCounter();
    const phone = window.matchMedia("(max-width: 760px)").matches;
    const what = this.noteMode ? t("Write a note for the team…") : t("Write a message…");
    const ready = phone ? what : what + " " + t("(Enter to send, Shift+Enter for a new line)");
    if (enabled) this.input.placeholder = ready;
    else if (this.queueing) this.input.placeholder = t("Offline: what you send now goes out when you are back");
    else this.input.placeholder = t("Reconnecting… your draft is kept");
  }

  stopTyping() {
    if (this.onTyping && this.lastTyping) {
      this.lastTyping = 0;
      this.onTyping(false);
    }
  }

  submit() {
    const body = this.input.value.trim();
    const files = this.tray ? this.tray.ready : [];
    if (!(this.enabled || this.queueing) || (!body && !files.length)) return;
    if ([...body].length > this.maxBody || (this.tray && this.tray.busy)) return;
    // A page may ask first (the inbox: someone else is assigned). Nothing is cleared
    // until it says go: false keeps the text, an object adds to the payload.
    const asking = this.beforeSubmit ? this.beforeSubmit() : null;
    if (asking && typeof asking.then === "function") {
      asking.then((extra) => { if (extra !== false) this.finishSubmit(body, files, extra || {}); });
      return;
    }
    this.finishSubmit(body, files, {});
  }

  finishSubmit(body, files, extra) {
    if (this.input.value.trim() === body) this.input.value = "";
    if (this.tray) this.tray.clearSent();
    this.saveDraft();
    this.updateCounter();
    this.stopTyping();
    this.onSend(body, files, extra);
  }
}

// Page through history after `afterId` until the server says there is no more.
export async function resync(socket, list, roomId) {
  let after = list.highestId;
  for (;;) {
    const page = await call(socket, "history", { room_id: roomId, after_id: after, limit: 200 });
    if (!page.ok) return page;
    list.addAll(page.messages, page.events);
    if (!page.has_more || !page.messages.length) return page;
    after = page.messages[page.messages.length - 1].id;
  }
}

export async function loadOlder(socket, list, roomId, button) {
  const page = await call(socket, "history", { room_id: roomId, before_id: list.lowestId, limit: 50 });
  if (!page.ok) return;
  const box = list.list.closest(".messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  list.addAll(page.messages, page.events);
  box.scrollTop = box.scrollHeight - fromBottom;
  button.hidden = !page.has_more;
}

export async function loadNewest(socket, list, roomId, button) {
  const page = await call(socket, "history", { room_id: roomId, limit: 50 });
  if (!page.ok) return page;
  list.addAll(page.messages, page.events);
  button.hidden = !page.has_more;
  list.scrollToBottom();
  return page;
}

// One conversation on screen, for both pages: its messages, the typing line, read
// marks, "Load earlier", resuming after a reconnect (resync, then resend what had no
// ack) and the composer's sends. The pages decide which room is open; the rest is here.
export class Conversation {
  // `canRead()`, when given, says whether the reader can see the conversation now (the
  // widget's panel may be closed while its page is visible); read marks wait for it.
  // `draftKey`: where the composer keeps its draft across reloads (none: no keeping).
  // `auth(xhr)` proves who uploads (the page's cookie by default) and `resolve(url)`
  // turns a file's URL into one the browser may load (the widget's panel: a blob).
  constructor({ socket, me, onSent, canRead, draftKey, auth = cookieAuth, resolve = null }) {
    const $ = (id) => document.getElementById(id);
    Object.assign(this, { socket, me, onSent, canRead });
    this.roomId = null;
    this.list = new MessageList({ list: $("message-list"), empty: $("empty"), me });
    if (resolve) {
      this.list.resolve = resolve;
      setResolver(resolve);
    }
    this.typingLine = $("typing");
    this.older = $("load-older");
    this.typingTimer = null;
    this.composer = new Composer({
      form: $("composer"),
      input: $("composer-input"),
      counter: $("composer-counter"),
      button: $("composer-send"),
      onSend: (body, files, extra = {}) => this.send(body, { ...(this.composer.noteMode ? { internal: true } : {}), ...extra }, files),
      onTyping: (isTyping) => this.roomId && !(isTyping && this.composer.noteMode)
        && call(socket, "typing", { room_id: this.roomId, is_typing: isTyping }),
      draftKey,
    });
    const form = $("composer");
    this.composer.tray = new Tray({
      list: $("attachment-tray"),
      maxBytes: Number(form.dataset.maxFile) || 20 * 1024 * 1024,
      types: new Set((form.dataset.fileTypes || "").split(",").filter(Boolean)),
      auth,
      onChange: () => this.composer.updateCounter(),
    });
    acceptFiles({
      zone: form.closest(".conversation, .chat, .widget") || document.body,
      input: $("composer-input"),
      picker: $("attach-input"),
      button: $("attach"),
      tray: this.composer.tray,
      enabled: () => this.roomId !== null,
    });
    socket.on("new_message", (message) => this.receive(message));
    socket.on("typing", (event) => this.showTyping(event));
    socket.on("room_event", (line) => this.list.addLine(line)); // the team's pages only
    socket.on("read", (event) => {
      if (event.room_id === this.roomId) this.list.setSeen(event.message_id);
    });
    this.older.addEventListener("click", () => this.loadOlder());
    loadWhenVisible(this.older, () => this.loadOlder());
    document.addEventListener("visibilitychange", () => this.markRead());
  }

  // Show `room` (a Room): its newest page, read up to there.
  async open(room) {
    this.roomId = room.id;
    this.list.clear();
    this.list.roomId = room.id;
    this.list.setSeen(room.seen_up_to);
    this.typingLine.hidden = true;
    const page = await loadNewest(this.socket, this.list, room.id, this.older);
    if (this.roomId === room.id) this.markRead();
    return page;
  }

  close() {
    this.roomId = null;
    this.list.clear();
    this.list.roomId = null;
    this.typingLine.hidden = true;
  }

  // After a reconnect: what was missed, then the sends that never got an answer (with
  // their client_id, so none is stored twice), then the read mark.
  async resume() {
    if (this.roomId === null) return;
    await resync(this.socket, this.list, this.roomId);
    this.list.unsent().forEach((payload) => sendMessage(this.socket, this.list, payload));
    this.markRead();
  }

  // The room's own changes (room_updated, or a list_rooms answer): the receipt.
  update(room) {
    if (room.id === this.roomId) this.list.setSeen(room.seen_up_to);
  }

  send(body, extra = {}, files = []) {
    if (this.roomId === null) return;
    const payload = { body, client_id: newClientId(), room_id: this.roomId, ...extra };
    if (files.length) payload.attachments = files.map((file) => file.id);
    this.list.addPending({ ...payload, files });
    if (!this.socket.connected) {
      // Sent once, by `resume` when the connection is back (socket.io would also send
      // its own buffered copy: the same client_id, but twice on the wire).
      this.list.markWaiting(payload.client_id);
      return;
    }
    sendMessage(this.socket, this.list, payload).then((ack) => this.onSent && this.onSent(ack));
  }

  receive(message) {
    if (message.room_id !== this.roomId) return;
    this.list.add(message);
    if (message.author.id !== this.me.id) {
      this.typingLine.hidden = true;
      this.announce(message);
      this.markRead();
    }
  }

  // Screen readers hear a new message from someone else, once, as it arrives: one
  // live region that holds the latest, not the whole list (a loaded page of history,
  // or a receipt changing, is not news).
  announce(message) {
    const announcer = document.getElementById("announcer");
    if (!announcer) return;
    const kind = message.internal ? t("Internal note") : t("New message");
    announcer.textContent = t("%(kind)s from %(name)s: %(body)s", { kind, name: message.author.name, body: message.body });
  }

  showTyping(event) {
    if (event.room_id !== this.roomId || event.user.id === this.me.id) return;
    clearTimeout(this.typingTimer);
    // a teammate typing is replying (the customer's page never hears the team's notes)
    this.typingLine.textContent = event.user.role === "customer"
      ? t("%(name)s is typing…", { name: event.user.name })
      : t("%(name)s is replying…", { name: event.user.name });
    this.typingLine.hidden = !event.is_typing;
    if (event.is_typing) this.typingTimer = setTimeout(() => { this.typingLine.hidden = true; }, 6000);
  }

  // Tell the server what we have read, when the page is actually being looked at.
  markRead() {
    if (this.roomId === null || document.visibilityState !== "visible") return;
    if (this.canRead && !this.canRead()) return;
    const latest = this.list.highestId;
    if (latest) call(this.socket, "mark_read", { room_id: this.roomId, message_id: latest });
  }

  loadOlder() {
    if (this.roomId === null) return undefined;
    return loadOlder(this.socket, this.list, this.roomId, this.older);
  }
}
