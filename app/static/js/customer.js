// The customer's page: their one conversation with the support team.
import {
  MessageList, call, connectChat, loadNewest, loadOlder, loadWhenVisible, readMe,
  resync, roomComposer, sendMessage, showConnection,
} from "./common.js";

const me = readMe();
const $ = (id) => document.getElementById(id);
const list = new MessageList({ list: $("message-list"), empty: $("empty"), me });
const connection = $("connection");
const typingLine = $("typing");
let roomId = null;
let typingTimer = null;

const socket = connectChat({
  onConnect: () => start(),
  onState: (state, text) => {
    showConnection(connection, state, text);
    composer.setEnabled(state === "connected" && roomId !== null);
  },
});

const composer = roomComposer(socket, () => roomId, () => list);

async function start() {
  const answer = await call(socket, "list_rooms", {});
  if (!answer.ok || !answer.rooms.length) {
    showConnection(connection, "offline", "Could not open your conversation — retrying…");
    setTimeout(() => socket.connected && start(), 3000);
    return;
  }
  const room = answer.rooms[0];
  const firstLoad = roomId === null;
  roomId = room.id;
  showResolved(room.status);
  list.setSeen(room.seen_up_to);
  composer.setEnabled(true);
  if (firstLoad) await loadNewest(socket, list, roomId, $("load-older"));
  else await resync(socket, list, roomId);
  list.unsent().forEach((payload) => sendMessage(socket, list, payload)); // same client_id
  markRead();
}

function showResolved(status) {
  $("resolved-banner").hidden = status !== "resolved";
}

// Tell the server what we have read, when the page is actually being looked at.
function markRead() {
  if (!roomId || document.visibilityState !== "visible") return;
  const latest = list.highestId;
  if (latest) call(socket, "mark_read", { room_id: roomId, message_id: latest });
}

socket.on("new_message", (message) => {
  if (message.room_id !== roomId && roomId !== null) return;
  if (roomId === null) roomId = message.room_id;
  list.add(message);
  if (message.author.id !== me.id) {
    typingLine.hidden = true;
    markRead();
  }
});

socket.on("room_updated", (room) => {
  if (room.id !== roomId) return;
  showResolved(room.status);
  list.setSeen(room.seen_up_to);
});

// The support team read up to here: "Seen" moves under my last message it covers.
socket.on("read", (event) => {
  if (event.room_id === roomId) list.setSeen(event.message_id);
});

socket.on("typing", (event) => {
  if (event.room_id !== roomId || event.user.id === me.id) return;
  clearTimeout(typingTimer);
  typingLine.textContent = `${event.user.name} is typing…`;
  typingLine.hidden = !event.is_typing;
  if (event.is_typing) typingTimer = setTimeout(() => { typingLine.hidden = true; }, 6000);
});

socket.on("presence", (event) => {
  if ("admins_online" in event) {
    $("support-presence").textContent = event.admins_online
      ? "Our team is online"
      : "Our team is away — we will answer as soon as we are back";
  }
});

$("load-older").addEventListener("click", (event) => loadOlder(socket, list, roomId, event.target));
loadWhenVisible($("load-older"), () => loadOlder(socket, list, roomId, $("load-older")));
document.addEventListener("visibilitychange", markRead);
