// The session and its socket, for both pages: who the page's user is, the /chat
// connection, acknowledgements, token renewal and reconnecting, and the connection
// state shown on the page.
import { el, t } from "./dom.js";

export const ACK_TIMEOUT_MS = 10000;

export function readMe() {
  return JSON.parse(document.getElementById("me").textContent);
}

export function readCookie(name) {
  const match = document.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
  return match ? decodeURIComponent(match.slice(name.length + 1)) : null;
}

// Ask for a new pair of cookies with the HttpOnly refresh cookie (CSRF double submit).
// Every refresh spends the refresh token, and spending one twice ends the session, so
// the tabs of one browser take turns (Web Locks). A tab that waited finds that another
// tab has already renewed (the readable CSRF twin of the access cookie changed) and
// simply reconnects with the new cookie.
async function renewAccessCookie(seenCsrf) {
  const renew = async () => {
    if (readCookie("csrf_access_token") !== seenCsrf) return true;
    try {
      const response = await fetch("/api/auth/refresh", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-TOKEN": readCookie("csrf_refresh_token") || "" },
      });
      return response.ok;
    } catch {
      return false;
    }
  };
  if (navigator.locks) return navigator.locks.request("chat-session-renewal", renew);
  return renew();
}

// Emit with an acknowledgement; a lost answer becomes an error, never a hang.
export function call(socket, event, payload) {
  return new Promise((resolve) => {
    socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, ack) => {
      if (err) resolve({ ok: false, error: { code: "timeout", message: t("No answer from the server.") } });
      else resolve(ack);
    });
  });
}

// The /chat socket. By default the page's HttpOnly access cookie proves who we are;
// when the server refuses it or says the session expired, renew it once and connect
// again. The widget passes `auth` (the token to send) and `renew` (a promise of true
// once a new token is at hand) instead, and `onSignedOut` for when renewal fails.
export function connectChat({ onConnect, onState, auth, renew, onSignedOut }) {
  const socket = auth
    ? io("/chat", { auth: (cb) => cb({ token: auth() }) })
    : io("/chat", { withCredentials: true });
  let renewals = 0;
  const setState = (state, text) => onState && onState(state, text);
  const signedOut = onSignedOut || (() => window.location.assign("/login"));

  const renewAndReconnect = async () => {
    const seenCsrf = readCookie("csrf_access_token");
    setState("reconnecting", t("Renewing your session…"));
    renewals += 1;
    const renewed = renewals <= 3 && (renew ? await renew() : await renewAccessCookie(seenCsrf));
    if (!renewed) {
      signedOut();
      return;
    }
    socket.connect();
  };

  socket.on("connect", () => {
    renewals = 0;
    setState("connected", t("Connected"));
    onConnect();
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io client disconnect") return;
    setState("reconnecting", t("Reconnecting…"));
  });
  socket.on("connect_error", (err) => {
    if (err && err.message === "unauthorized") renewAndReconnect();
    else if (err && err.message === "too_many_connections") {
      setState("offline", t("Too many tabs open — close one, then reload this page."));
    } else {
      setState("offline", t("Offline — retrying…"));
      // A refusal by the server (`unavailable`: restarting, or its database is away)
      // is final for socket.io-client; try again after a short, jittered pause.
      if (!socket.active) setTimeout(() => socket.connect(), 1000 + Math.random() * 2000);
    }
  });
  socket.on("session_expired", () => renewAndReconnect());
  socket.io.on("reconnect_failed", () => setState("offline", t("Offline")));
  return socket;
}

// The connection pill, and the page's own state: while it is offline a full-width banner
// says so and what the page shows of others' presence is greyed out (it may be stale).
export function showConnection(node, state, text) {
  node.dataset.state = state;
  node.textContent = text;
  document.body.dataset.connection = state;
  let banner = document.getElementById("offline-banner");
  if (!banner) {
    banner = el("p", { className: "offline-banner", attrs: { role: "status", id: "offline-banner" } });
    banner.hidden = true;
    document.querySelector(".topbar").after(banner);
  }
  banner.hidden = state !== "offline";
  if (state === "offline") {
    banner.textContent = text + " " + t("Your messages and drafts are kept and go out once you are back.");
  }
}
