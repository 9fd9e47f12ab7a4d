// The customer's page: their one conversation with the support team.
import { watchAvailability } from "./availability.js";
import { Conversation } from "./conversation.js";
import { t } from "./dom.js";
import { replySoundOn, setReplySound, soundForReply } from "./notify.js";
import { call, connectChat, readMe, showConnection } from "./session.js";

const me = readMe();
const $ = (id) => document.getElementById(id);
const connection = $("connection");

const socket = connectChat({
  onConnect: () => start(),
  onState: (state, text) => {
    showConnection(connection, state, text);
    // Offline, once the room is known, messages queue and go out when the connection is back.
    const known = conversation.roomId !== null;
    conversation.composer.setEnabled(state === "connected" && known, { queue: known });
  },
});

const conversation = new Conversation({ socket, me, draftKey: `chat-draft-${me.id}` });

async function start() {
  const answer = await call(socket, "list_rooms", {});
  if (!answer.ok || !answer.rooms.length) {
    showConnection(connection, "offline", t("Could not open your conversation — retrying…"));
    setTimeout(() => socket.connected && start(), 3000);
    return;
  }
  const room = answer.rooms[0];
  showResolved(room.status);
  conversation.composer.setEnabled(true);
  if (conversation.roomId === room.id) {
    conversation.update(room);
    await conversation.resume();
  } else await conversation.open(room);
}

function showResolved(status) {
  $("resolved-banner").hidden = status !== "resolved";
}

socket.on("room_updated", (room) => {
  if (room.id !== conversation.roomId) return;
  showResolved(room.status);
  conversation.update(room);
});

watchAvailability(socket, $("support-presence"), $("away-banner"));

// A reply that arrives while this tab is in the background: the tab's title counts it
// ("(2) Chat with support"), and a short sound plays unless switched off.
const baseTitle = document.title;
let unseen = 0;
socket.on("new_message", (message) => {
  if (message.author.id === me.id || !document.hidden) return;
  unseen += 1;
  document.title = `(${unseen}) ${baseTitle}`;
  soundForReply(message.id);
});
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  unseen = 0;
  document.title = baseTitle;
});

const soundToggle = $("sound-toggle");
function showSound() {
  const on = replySoundOn();
  soundToggle.setAttribute("aria-pressed", String(on));
  soundToggle.textContent = on ? t("Sound on") : t("Sound off");
}
soundToggle.addEventListener("click", () => {
  setReplySound(!replySoundOn());
  showSound();
});
showSound();
