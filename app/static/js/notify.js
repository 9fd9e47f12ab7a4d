// Desktop notifications and a short sound for the inbox, when a customer writes in a
// conversation the agent does not have open. Asked for once, with a sentence that says
// why; both can be switched off. However many tabs an agent has open, each message is
// announced once: the tabs take turns (Web Locks) and remember what was announced.

const SETTINGS = "chat-alerts"; // localStorage: {"notify": bool, "sound": bool}
const ANNOUNCED = "chat-alerts-announced"; // localStorage: recent message ids
const KEEP = 200;

export function alertSettings() {
  try {
    return { notify: false, sound: true, ...JSON.parse(localStorage.getItem(SETTINGS) || "{}") };
  } catch {
    return { notify: false, sound: true };
  }
}

export function saveAlertSettings(settings) {
  localStorage.setItem(SETTINGS, JSON.stringify(settings));
}

export function notificationsAllowed() {
  return "Notification" in window && Notification.permission === "granted";
}

// Ask the browser, from a click (browsers only ask from a user's gesture).
export async function askForNotifications() {
  if (!("Notification" in window)) return false;
  if (Notification.permission === "granted") return true;
  if (Notification.permission === "denied") return false;
  return (await Notification.requestPermission()) === "granted";
}

function firstToAnnounce(messageId) {
  let seen = [];
  try {
    seen = JSON.parse(localStorage.getItem(ANNOUNCED) || "[]");
  } catch {
    seen = [];
  }
  if (seen.includes(messageId)) return false;
  seen.push(messageId);
  localStorage.setItem(ANNOUNCED, JSON.stringify(seen.slice(-KEEP)));
  return true;
}

// The customer's page: a short sound for a reply that arrives while the tab is in the
// background, once per browser however many tabs are open; switched off on the page.
const REPLY_SOUND = "chat-reply-sound"; // localStorage: "off" when switched off

export function replySoundOn() {
  return localStorage.getItem(REPLY_SOUND) !== "off";
}

export function setReplySound(on) {
  localStorage.setItem(REPLY_SOUND, on ? "on" : "off");
}

export function soundForReply(messageId) {
  if (!replySoundOn()) return;
  const run = () => firstToAnnounce(messageId) && beep();
  if (navigator.locks) navigator.locks.request("chat-alerts", run);
  else run();
}

function beep() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  try {
    const audio = new Context();
    const tone = audio.createOscillator();
    const volume = audio.createGain();
    tone.frequency.value = 880;
    volume.gain.setValueAtTime(0.08, audio.currentTime);
    volume.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.18);
    tone.connect(volume).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.2);
    tone.onended = () => audio.close();
  } catch {
    // a browser that refuses sound before any click: the notification still shows
  }
}

// Announce a customer's message once per browser, whichever tab hears it first.
export function announce(message, { onClick } = {}) {
  const settings = alertSettings();
  if (!settings.notify && !settings.sound) return;
  const run = () => {
    if (!firstToAnnounce(message.id)) return;
    if (settings.sound) beep();
    if (settings.notify && notificationsAllowed()) {
      const note = new Notification(message.author.name, {
        body: message.body.slice(0, 140),
        tag: `chat-room-${message.room_id}`,
      });
      note.onclick = () => {
        window.focus();
        if (onClick) onClick(message.room_id);
        note.close();
      };
    }
  };
  if (navigator.locks) navigator.locks.request("chat-alerts", run);
  else run();
}
