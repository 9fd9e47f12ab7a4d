// The admin inbox: every customer's room, live, and the open conversation.
import { Conversation } from "./conversation.js";
import { avatar, el, formatTime, LANG, loadWhenVisible, t } from "./dom.js";
import { call, connectChat, readMe, showConnection } from "./session.js";
import { cannedReplies } from "./canned.js";
import { hoursSettings } from "./hours.js";
import { siteSettings } from "./sites.js";
import { Team } from "./team.js";
import {
  alertSettings, announce, askForNotifications, notificationsAllowed, saveAlertSettings,
} from "./notify.js";

const me = readMe();
const $ = (id) => document.getElementById(id);
const rooms = new Map(); // id -> Room
const roomNodes = new Map();
let openRoomId = null;
let query = "";
let filter = "all"; // all | open | resolved | unread
let view = "all"; // mine | unassigned | all (whose conversations)
let nextCursor = null;
let countsTimer = null;

const socket = connectChat({
  onConnect: () => start(),
  onState: (state, text) => {
    showConnection($("connection"), state, text);
    const open = openRoomId !== null;
    conversation.composer.setEnabled(state === "connected" && open, { queue: open });
  },
});

const conversation = new Conversation({ socket, me });
const composer = conversation.composer;

// Reply or internal note: the switch stays where the agent put it, and the composer
// turns yellow while what is written goes to the team only.
function setNoteMode(on) {
  composer.noteMode = on;
  $("mode-reply").setAttribute("aria-pressed", String(!on));
  $("mode-note").setAttribute("aria-pressed", String(on));
  $("mode-hint").hidden = !on;
  $("conversation").classList.toggle("note-mode", on);
  $("composer-send").textContent = on ? t("Add note") : t("Send");
  composer.setEnabled(composer.enabled, { queue: composer.queueing });
}
cannedReplies(socket, composer);
if (me.role === "admin") {
  siteSettings(socket);
  hoursSettings(socket);
}

// The team: the assign menu, who else is viewing or replying, the Team dialog.
const team = new Team({ socket, me, onChange: () => showTeamBits() });

function showTeamBits() {
  const room = rooms.get(openRoomId);
  if (room) team.drawAssignee(room);
  const viewers = openRoomId === null ? [] : team.viewersOf(openRoomId);
  $("viewers").hidden = viewers.length === 0;
  $("viewers").textContent = viewers.length === 1
    ? t("%(name)s is viewing", { name: viewers[0] })
    : t("%(names)s are viewing", { names: viewers.join(", ") });
}
setInterval(showTeamBits, 15000); // viewers not heard from for a minute fade out

$("assignee").addEventListener("change", async (event) => {
  const roomId = Number(event.target.dataset.roomId);
  const value = event.target.value;
  const answer = await team.assign(roomId, value === "" ? null : Number(value));
  if (answer.ok) upsertRoom(answer.room);
  else showTeamBits(); // refused: show what holds
});

// Answering where someone else is assigned asks once per conversation and assignee;
// the send then carries reply_anyway and the thread records it.
const confirmedOver = new Set();
composer.beforeSubmit = () => {
  const room = rooms.get(openRoomId);
  if (composer.noteMode || !room || !room.assignee || room.assignee.id === me.id) return null;
  const key = `${room.id}:${room.assignee.id}`;
  if (confirmedOver.has(key)) return null;
  const dialog = $("reply-anyway");
  $("reply-anyway-title").textContent = t("%(name)s is assigned. Reply anyway?", { name: room.assignee.name });
  dialog.returnValue = "cancel";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", async () => {
      if (dialog.returnValue === "reply") {
        confirmedOver.add(key);
        resolve({ reply_anyway: true });
      } else if (dialog.returnValue === "mine") {
        const answer = await team.assign(room.id, me.id);
        if (answer.ok) upsertRoom(answer.room);
        resolve(answer.ok ? {} : false);
      } else {
        resolve(false);
        $("composer-input").focus();
      }
    }, { once: true });
  });
};
$("mode-reply").addEventListener("click", () => { setNoteMode(false); $("composer-input").focus(); });
$("mode-note").addEventListener("click", () => { setNoteMode(true); $("composer-input").focus(); });

function activity(room) {
  return room.last_message ? room.last_message.created_at : room.created_at;
}

function compareRooms(a, b) {
  const byTime = activity(b).localeCompare(activity(a));
  return byTime || b.id - a.id;
}

function renderRoom(room) {
  const online = el("span", {
    className: `dot ${room.customer_online ? "online" : ""}`,
    attrs: { title: room.customer_online ? t("Online") : t("Offline") },
  });
  const name = el("span", { className: "room-name" }, ...marked(room.customer.name));
  const time = el("time", { className: "room-time", text: formatTime(activity(room)) });
  const top = el("div", { className: "room-top" }, name, time);
  const preview = room.match ? matchPreview(room.match) : el("p", {
    className: "room-preview",
    text: room.last_message ? previewText(room.last_message) : t("No messages yet"),
  });
  const email = el("span", { className: "room-email" }, ...marked(room.customer.email));
  const bottom = el("div", { className: "room-bottom" }, email);
  if (room.assignee) {
    const mine = room.assignee.id === me.id;
    bottom.append(el("span", {
      className: `assignee-tag ${mine ? "mine" : ""}`,
      text: mine ? t("You") : room.assignee.name,
      attrs: { title: t("Assigned to %(name)s", { name: room.assignee.name }) },
    }));
  } else if (room.status === "open") {
    bottom.append(el("span", { className: "assignee-tag none", text: t("Unassigned") }));
  }
  if (room.status === "resolved") bottom.append(el("span", { className: "tag", text: t("Resolved") }));
  if (room.unread_count > 0) {
    bottom.append(el("span", { className: "unread", text: String(room.unread_count) }));
  }
  const text = el("div", { className: "room-text" }, top, preview, bottom);
  const face = el("div", { className: "room-face" }, avatar(room.customer.name), online);
  const button = el("button", { className: "room", attrs: { type: "button" } }, face, text);
  button.addEventListener("click", () => openRoom(Number(item.dataset.id)));
  const classes = [room.id === openRoomId ? "active" : "", room.unread_count > 0 ? "has-unread" : ""];
  const item = el("li", { className: classes.join(" ").trim() }, button);
  item.dataset.id = String(room.id);
  return item;
}

// A search's matches, marked: in the customer's name and email (where the server
// matched the whole query), and in the message text the server found and cut.
function marked(text) {
  const needle = query.toLowerCase();
  const at = needle ? text.toLowerCase().indexOf(needle) : -1;
  if (at === -1 || text.toLowerCase().length !== text.length) return [text];
  const end = at + needle.length;
  return [text.slice(0, at), el("mark", { text: text.slice(at, end) }), text.slice(end)];
}

// A message's line in the list: its text, or, for files alone, "📎 Photo" or the name.
function previewText(message) {
  if (message.body) return message.body;
  const files = message.attachments || [];
  if (!files.length) return "";
  const first = files[0];
  const what = first.kind === "image" ? (files.length > 1 ? t("Photos") : t("Photo")) : first.name;
  return `📎 ${what}` + (files.length > 1 && first.kind !== "image" ? ` +${files.length - 1}` : "");
}

function matchPreview(match) {
  // parts alternate plain and matched text: the odd-numbered ones are matches
  const parts = match.parts.map((part, i) => (i % 2 ? el("mark", { text: part }) : part));
  const label = match.internal ? el("span", { className: "match-note", text: t("Note") }) : null;
  const preview = el("p", { className: "room-preview match" }, label, ...parts);
  preview.title = match.parts.join("");
  return preview;
}

// A row already on screen keeps its element and button, only its insides change: a
// click that lands while a live update redraws the list (an assignment arriving just
// as the agent clicks) still reaches the button (its insides take no pointer events).
function redrawRooms() {
  const ordered = [...rooms.values()].sort(compareRooms);
  $("rooms").replaceChildren(...ordered.map((room) => {
    const fresh = renderRoom(room);
    const shown = roomNodes.get(room.id);
    if (!shown) {
      roomNodes.set(room.id, fresh);
      return fresh;
    }
    shown.className = fresh.className;
    shown.firstChild.replaceChildren(...fresh.firstChild.childNodes);
    return shown;
  }));
  for (const id of roomNodes.keys()) if (!rooms.has(id)) roomNodes.delete(id);
  $("rooms-empty").hidden = rooms.size > 0;
  let empty = t("No conversations yet.");
  if (query) empty = t("No matches for “%(query)s”.", { query });
  else if (view === "mine") empty = t("Nothing assigned to you. New conversations come here as they are given to you.");
  else if (view === "unassigned") empty = t("No conversation is waiting for someone.");
  else if (filter === "open") empty = t("No open conversations.");
  else if (filter === "resolved") empty = t("No resolved conversations.");
  else if (filter === "unread") empty = t("No unread conversations.");
  $("rooms-empty").textContent = empty;
  $("rooms-more").hidden = !nextCursor;
  showUnreadTotals();
}

// The tab's title counts the conversations with unread messages ("(3) Inbox"), and
// the inbox's heading shows how many messages are unread in all.
function showUnreadTotals() {
  const unread = [...rooms.values()].filter((room) => room.unread_count > 0);
  const messages = unread.reduce((sum, room) => sum + room.unread_count, 0);
  document.title = (unread.length ? "(" + unread.length + ") " : "") + t("Inbox · Support chat");
  const total = $("total-unread");
  total.hidden = messages === 0;
  total.textContent = String(messages);
  total.title = messages === 1 ? t("1 unread message") : t("%(count)s unread messages", { count: messages });
}

function matchesFilter(room) {
  if (view === "mine" && !(room.assignee && room.assignee.id === me.id)) return false;
  if (view === "unassigned" && room.assignee) return false;
  if (filter === "unread") return room.unread_count > 0;
  return filter === "all" || room.status === filter;
}

function matchesQuery(room) {
  if (!matchesFilter(room)) return false;
  if (!query) return true;
  const needle = query.toLowerCase();
  const body = room.last_message ? room.last_message.body.toLowerCase() : "";
  const words = needle.match(/[\p{L}\p{N}]+/gu) || [];
  return room.customer.name.toLowerCase().includes(needle)
    || room.customer.email.toLowerCase().includes(needle)
    || (words.length > 0 && words.every((word) => body.includes(word)));
}

// Broadcasts of two sends committed a moment apart can arrive in either order, and a
// list_rooms answer can be older than a room_updated that overtook it: a summary whose
// last message is older than the one shown is stale and is dropped.
function lastId(room) {
  return room && room.last_message ? room.last_message.id : 0;
}

function isStale(room) {
  return lastId(room) < lastId(rooms.get(room.id));
}

function upsertRoom(room) {
  refreshCountsSoon();
  if (!rooms.has(room.id) && !matchesQuery(room)) return;
  if (isStale(room)) return;
  if (!matchesFilter(room) && room.id !== openRoomId) {
    rooms.delete(room.id); // it left the filter shown (resolved, or read elsewhere)
    redrawRooms();
    return;
  }
  // a live summary has no `match`: keep what the search found in this room
  const shown = rooms.get(room.id);
  rooms.set(room.id, shown && shown.match && !room.match ? { ...room, match: shown.match } : room);
  if (room.id === openRoomId) {
    refreshProfileSoon();
    showRoomHeader(room);
    conversation.update(room);
  }
  redrawRooms();
}

async function loadRooms({ append = false } = {}) {
  const payload = { limit: 50, view };
  if (query) payload.q = query;
  if (filter === "open" || filter === "resolved") payload.status = filter;
  if (filter === "unread") payload.unread = true;
  if (append && nextCursor) payload.before = nextCursor;
  const answer = await call(socket, "list_rooms", payload);
  if (!answer.ok) return;
  const shown = new Map(rooms);
  if (!append) rooms.clear();
  answer.rooms.forEach((room) => {
    const newer = shown.get(room.id);
    rooms.set(room.id, lastId(newer) > lastId(room) ? newer : room);
  });
  nextCursor = answer.next;
  redrawRooms();
}

function showRoomHeader(room) {
  $("room-title").textContent = room.customer.name;
  const presence = room.customer_online ? t("online") : t("offline");
  const status = room.status === "open" ? t("open") : t("resolved");
  $("room-subtitle").textContent = [room.customer.email, presence, status].join(" · ");
  $("room-status").textContent = room.status === "open" ? t("Mark resolved") : t("Reopen");
  showTeamBits();
}

// The panel beside the conversation: who the customer is (customer_profile).
let profileTimer = null;

function when(iso) {
  return iso ? new Date(iso).toLocaleString(LANG, { dateStyle: "medium", timeStyle: "short" }) : "—";
}

async function loadProfile(roomId) {
  const answer = await call(socket, "customer_profile", { room_id: roomId });
  if (!answer.ok || roomId !== openRoomId) return;
  const p = answer.profile;
  const rows = [
    [t("Name"), p.customer.name],
    [t("Email"), p.customer.email],
    ...(p.site ? [[t("Came from"), p.site.name]] : []),
    [p.site ? t("First chat") : t("Signed up"), when(p.signed_up_at)],
    [t("Last seen"), p.online ? t("Online now") : when(p.last_seen_at)],
    [t("Conversation"), p.status === "open" ? t("Open") : t("Resolved")],
    [t("Messages"), String(p.message_count)],
    [t("First contact"), when(p.first_contact_at)],
  ];
  $("profile").replaceChildren(
    ...rows.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]),
  );
}

function refreshProfileSoon() {
  if (profileTimer) return; // at most one refresh per half second, even in a busy room
  profileTimer = setTimeout(() => {
    profileTimer = null;
    if (openRoomId) loadProfile(openRoomId);
  }, 500);
}

async function openRoom(roomId) {
  openRoomId = roomId;
  $("customer-panel").hidden = false;
  document.querySelector(".inbox").classList.add("with-panel");
  $("profile").replaceChildren();
  loadProfile(roomId);
  $("placeholder").hidden = true;
  $("conversation").hidden = false;
  document.querySelector(".inbox").classList.add("showing-conversation");
  showRoomHeader(rooms.get(roomId));
  team.view(roomId);
  redrawRooms();
  composer.setEnabled(socket.connected, { queue: true });
  await conversation.open(rooms.get(roomId));
  // On a phone, focusing the composer would pop the keyboard up over the conversation
  // the agent came to read; there `r` or a tap starts a reply.
  if (!window.matchMedia("(max-width: 760px)").matches) $("composer-input").focus();
}

// The filters' counts, asked again at most every 0.4 s while rooms change (one cheap query).
async function refreshCounts() {
  const answer = await call(socket, "inbox_counts", { view });
  if (!answer.ok) return;
  for (const button of document.querySelectorAll("#filters .filter")) {
    button.querySelector(".count").textContent = String(answer.counts[button.dataset.filter]);
  }
  // the views count open conversations: what is waiting on whom
  for (const button of document.querySelectorAll("#views .view")) {
    button.querySelector(".count").textContent = String(answer.counts.views[button.dataset.view]);
  }
}

function refreshCountsSoon() {
  // A throttle, not a debounce: a debounce restarted by every room_updated would never
  // fire while messages keep coming, and the counts would stay stale.
  if (countsTimer) return;
  countsTimer = setTimeout(() => {
    countsTimer = null;
    refreshCounts();
  }, 400);
}

for (const button of document.querySelectorAll("#filters .filter")) {
  button.addEventListener("click", () => {
    filter = button.dataset.filter;
    for (const other of document.querySelectorAll("#filters .filter")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    nextCursor = null;
    loadRooms();
  });
}

for (const button of document.querySelectorAll("#views .view")) {
  button.addEventListener("click", () => {
    view = button.dataset.view;
    for (const other of document.querySelectorAll("#views .view")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    nextCursor = null;
    refreshCounts();
    loadRooms();
  });
}

async function start() {
  team.load();
  if (openRoomId !== null) team.view(openRoomId);
  refreshCounts();
  await loadRooms();
  await conversation.resume();
}

socket.on("room_created", upsertRoom);
socket.on("room_updated", upsertRoom);

socket.on("new_message", (message) => {
  const inView = message.room_id === openRoomId && document.visibilityState === "visible";
  // Alerts go to the assignee; a conversation nobody has alerts everyone.
  const room = rooms.get(message.room_id);
  const forMe = !room || !room.assignee || room.assignee.id === me.id;
  if (message.author.role === "customer" && !inView && forMe) {
    announce(message, { onClick: (roomId) => openRoom(roomId) });
  }
  if (!rooms.has(message.room_id) && !query && filter === "all") loadRooms();
});

socket.on("presence", (event) => {
  if (!("user_id" in event)) return;
  for (const room of rooms.values()) {
    if (room.customer.id === event.user_id) upsertRoom({ ...room, customer_online: event.online });
  }
});

let searchTimer = null;
$("search").addEventListener("input", (event) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    query = event.target.value.trim();
    nextCursor = null;
    loadRooms();
  }, 250);
});

// Narrower screens show the panel in the conversation's place, with a way back.
$("details").addEventListener("click", () => document.querySelector(".inbox").classList.add("showing-details"));
$("details-close").addEventListener("click", () => document.querySelector(".inbox").classList.remove("showing-details"));

// Phones show one pane at a time: back to the list closes the conversation.
$("back").addEventListener("click", () => {
  openRoomId = null;
  team.view(null);
  conversation.close();
  document.querySelector(".inbox").classList.remove("showing-conversation", "with-panel", "showing-details");
  $("customer-panel").hidden = true;
  $("conversation").hidden = true;
  $("placeholder").hidden = false;
  composer.setEnabled(false);
  redrawRooms();
});

$("rooms-more").addEventListener("click", () => loadRooms({ append: true }));
loadWhenVisible($("rooms-more"), () => loadRooms({ append: true }));
$("room-status").addEventListener("click", async () => {
  const room = rooms.get(openRoomId);
  if (!room) return;
  const status = room.status === "open" ? "resolved" : "open";
  const answer = await call(socket, "set_status", { room_id: openRoomId, status });
  if (answer.ok) upsertRoom(answer.room);
});

// Alerts: asked for once, with the reason; both switches are remembered per browser.
function showAlertSettings() {
  const settings = alertSettings();
  $("alerts-notify").checked = settings.notify && notificationsAllowed();
  $("alerts-sound").checked = settings.sound;
  const canAsk = "Notification" in window && Notification.permission !== "denied";
  $("ask-alerts").hidden = settings.asked || settings.notify || !canAsk;
}

async function turnNotificationsOn() {
  const allowed = await askForNotifications();
  saveAlertSettings({ ...alertSettings(), notify: allowed, asked: true });
  showAlertSettings();
}

$("alerts-yes").addEventListener("click", turnNotificationsOn);
$("alerts-no").addEventListener("click", () => {
  saveAlertSettings({ ...alertSettings(), asked: true });
  showAlertSettings();
});
$("alerts-notify").addEventListener("change", (event) => {
  if (event.target.checked) turnNotificationsOn();
  else {
    saveAlertSettings({ ...alertSettings(), notify: false });
    showAlertSettings();
  }
});
$("alerts-sound").addEventListener("change", (event) => {
  saveAlertSettings({ ...alertSettings(), sound: event.target.checked });
});
window.addEventListener("storage", showAlertSettings); // another tab changed them
showAlertSettings();

// Emails when customers wait while nobody is online: the agent's own, kept on the server.
const alertsEmail = $("alerts-email");
alertsEmail.checked = alertsEmail.dataset.on === "true";
alertsEmail.addEventListener("change", async () => {
  const wanted = alertsEmail.checked;
  const answer = await call(socket, "set_alert_emails", { on: wanted });
  if (!answer.ok) alertsEmail.checked = !wanted; // not saved: show what holds
});

// Keyboard shortcuts (listed behind "?"): none fire while typing in a field.
function moveBy(step) {
  const ordered = [...rooms.values()].sort(compareRooms);
  if (!ordered.length) return;
  const at = ordered.findIndex((room) => room.id === openRoomId);
  const next = at === -1 ? 0 : Math.min(ordered.length - 1, Math.max(0, at + step));
  openRoom(ordered[next].id).then(() => $("composer-input").blur());
  const node = roomNodes.get(ordered[next].id);
  if (node) node.scrollIntoView({ block: "nearest" });
}

document.addEventListener("keydown", (event) => {
  const typing = event.target.closest("input, textarea, select, [contenteditable]");
  if (event.key === "Escape" && typing) {
    event.target.blur();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if ($("shortcuts").open || $("canned-dialog").open) return;
  const actions = {
    j: () => moveBy(1),
    k: () => moveBy(-1),
    r: () => openRoomId && ($("mode-reply").click()),
    n: () => openRoomId && ($("mode-note").click()),
    e: () => openRoomId && $("room-status").click(),
    "/": () => $("search").focus(),
    "?": () => $("shortcuts").showModal(),
  };
  const action = actions[event.key];
  if (!action) return;
  event.preventDefault();
  action();
});
