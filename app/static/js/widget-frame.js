// The widget's panel, in its frame on the business's page. The page that framed it
// (the loader, /widget.js) sends the visitor's signed identity by postMessage; the panel
// trades it for a session of ours and shows the visitor's one conversation.
//
// Messages are taken only from the parent window, and only when its origin is one of
// the site's registered origins; answers go to that origin alone. No cookie of ours
// is used: the tokens live in this frame's memory.
import { watchAvailability } from "./availability.js";
import { Conversation } from "./conversation.js";
import { bearerAuth } from "./attachments.js";
import { t } from "./dom.js";
import { call, connectChat, showConnection } from "./session.js";

const config = JSON.parse(document.getElementById("widget-config").textContent);
const $ = (id) => document.getElementById(id);
let parentOrigin = null; // set by the first trusted message
let identity = null;
let session = null; // {access_token, refresh_token, user}
const blobs = new Map(); // a file's URL -> a blob: URL of its bytes, fetched with the token

function fetchAsBlob(url) {
  if (!blobs.has(url)) {
    blobs.set(url, fetch(url, { headers: { Authorization: `Bearer ${session.access_token}` } })
      .then((response) => (response.ok ? response.blob() : Promise.reject(response.status)))
      .then((blob) => URL.createObjectURL(blob))
      .catch(() => {
        blobs.delete(url);
        return "";
      }));
  }
  return blobs.get(url);
}
let socket = null;
let conversation = null;
let panelOpen = false; // the loader says when the visitor opens and closes the panel
let unread = 0; // the team's messages since the visitor last had the panel open

function setUnread(count) {
  unread = count;
  tell("supportchat:unread", { count });
}

function tell(type, data = {}) {
  if (parentOrigin) window.parent.postMessage({ type, ...data }, parentOrigin);
}

async function exchange() {
  if (!identity) return false;
  try {
    const response = await fetch("/api/widget/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ site_key: config.site_key, identity }),
    });
    if (!response.ok) return false;
    session = await response.json();
    return true;
  } catch {
    return false;
  }
}

// A new access token: with the refresh token first, else with the identity again.
async function renew() {
  if (session) {
    try {
      const response = await fetch("/api/auth/refresh", {
        method: "POST",
        headers: { Authorization: `Bearer ${session.refresh_token}` },
      });
      if (response.ok) {
        Object.assign(session, await response.json());
        return true;
      }
    } catch {
      /* fall through to the identity */
    }
  }
  return exchange();
}

function showSignedOut() {
  document.body.dataset.state = "signed-out";
  $("conversation").hidden = true;
  $("connection").hidden = true;
  $("signed-out").hidden = false;
  setUnread(0);
}

async function signIn() {
  if (!(await exchange())) {
    showSignedOut();
    return;
  }
  document.body.dataset.state = "signed-in";
  $("signed-out").hidden = true;
  $("conversation").hidden = false;
  $("connection").hidden = false;
  const first = session.user.name.split(/\s+/)[0] || session.user.name;
  $("greeting").textContent = t("Hi %(name)s!", { name: first });
  socket = connectChat({
    auth: () => session && session.access_token,
    renew,
    onSignedOut: () => signOut(),
    onConnect: () => start(),
    onState: (state, text) => {
      showConnection($("connection"), state, text);
      const known = conversation.roomId !== null;
      conversation.composer.setEnabled(state === "connected" && known, { queue: known });
    },
  });
  conversation = new Conversation({
    socket,
    me: session.user,
    canRead: () => panelOpen,
    draftKey: `chat-draft-widget-${config.site_key}-${session.user.id}`,
    // No cookie here: uploads carry the token, and files are fetched with it as blobs.
    auth: bearerAuth(() => session && session.access_token),
    resolve: fetchAsBlob,
  });
  socket.on("room_updated", (room) => {
    if (room.id !== conversation.roomId) return;
    $("resolved-banner").hidden = room.status !== "resolved";
    conversation.update(room);
  });
  socket.on("new_message", (message) => {
    if (!panelOpen && session && message.author.id !== session.user.id) setUnread(unread + 1);
  });
  watchAvailability(socket, $("support-presence"), $("away-banner"));
}

async function start() {
  const answer = await call(socket, "list_rooms", {});
  if (!answer.ok || !answer.rooms.length) {
    showConnection($("connection"), "offline", t("Could not open your conversation — retrying…"));
    setTimeout(() => socket && socket.connected && start(), 3000);
    return;
  }
  const room = answer.rooms[0];
  $("resolved-banner").hidden = room.status !== "resolved";
  conversation.composer.setEnabled(true);
  if (conversation.roomId === room.id) {
    conversation.update(room);
    await conversation.resume();
  } else await conversation.open(room);
  setUnread(panelOpen ? 0 : room.unread_count || 0);
}

// Forget the visitor: their session ends on the server and nothing stays on screen.
async function signOut() {
  const ending = session;
  session = null;
  identity = null;
  if (socket) {
    socket.disconnect();
    socket = null;
  }
  if (ending) {
    fetch("/api/auth/logout", {
      method: "POST",
      headers: { Authorization: `Bearer ${ending.access_token}` },
    }).catch(() => {});
  }
  // Nothing of theirs stays in this browser: drafts go too.
  try {
    Object.keys(localStorage)
      .filter((key) => key.startsWith("chat-draft-widget-"))
      .forEach((key) => localStorage.removeItem(key));
  } catch {
    /* storage blocked: nothing was kept */
  }
  // A fresh panel: the next visitor starts from an empty page, not a cleared one.
  window.location.reload();
}

window.addEventListener("message", (event) => {
  if (event.source !== window.parent || !config.origins.includes(event.origin)) return;
  const data = event.data || {};
  if (typeof data.type !== "string") return;
  parentOrigin = event.origin;
  if (data.type === "supportchat:identify") {
    if (session && data.identity === identity) return;
    if (session) {
      signOut(); // another person on the same page: start over, then wait to be told again
      return;
    }
    identity = typeof data.identity === "string" && data.identity ? data.identity : null;
    if (identity) signIn();
    else showSignedOut();
  } else if (data.type === "supportchat:reset") {
    if (session || identity) signOut();
    else showSignedOut();
  } else if (data.type === "supportchat:opened") {
    panelOpen = true;
    setUnread(0);
    if (conversation) conversation.markRead();
  } else if (data.type === "supportchat:closed") {
    panelOpen = false;
  }
});

$("widget-close").addEventListener("click", () => tell("supportchat:close"));
if (window.parent !== window) window.parent.postMessage({ type: "supportchat:frame-ready" }, "*");
