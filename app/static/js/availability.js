// Whether the team is in, said honestly on the customer's side (the chat page and the
// widget): away until when (in the visitor's own time zone), that the answer will come
// by email, or how fast the team typically answers. Asked again when an agent comes or
// goes, and when the team's hours open or close.
import { LANG, t } from "./dom.js";
import { call } from "./session.js";

function backWhen(iso) {
  const at = new Date(iso);
  const now = new Date();
  const time = at.toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" });
  const days = Math.round(
    (new Date(at.getFullYear(), at.getMonth(), at.getDate()) -
      new Date(now.getFullYear(), now.getMonth(), now.getDate())) / 86400000,
  );
  if (days === 0) return t("Back today at %(time)s", { time });
  if (days === 1) return t("Back tomorrow at %(time)s", { time });
  const format = days < 7 ? { weekday: "long" } : { month: "long", day: "numeric", weekday: "short" };
  const day = at.toLocaleDateString(LANG, format);
  return t("Back %(day)s at %(time)s", { day, time });
}

export function describe(state) {
  if (!state.away) {
    const line = t("Our team is online");
    const typical = state.reply_minutes
      ? t("Typically replies in %(minutes)s min", { minutes: state.reply_minutes })
      : "";
    return { line: typical ? line + " · " + typical : line, banner: "" };
  }
  const line = state.back_at ? backWhen(state.back_at) : t("Our team is away right now");
  const banner = state.email
    ? t("You can still write. We will answer here and by email, so you can close this page.")
    : t("You can still write. We will answer here as soon as we are back.");
  return { line, banner };
}

export function watchAvailability(socket, lineNode, bannerNode) {
  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    const answer = await call(socket, "availability", {});
    if (!answer.ok) return;
    const state = answer.availability;
    const { line, banner } = describe(state);
    lineNode.textContent = line;
    bannerNode.textContent = banner;
    bannerNode.hidden = !banner;
    const change = state.back_at || state.closes_at;
    if (change) {
      const wait = Math.min(Math.max(new Date(change) - Date.now() + 1000, 1000), 6 * 3600 * 1000);
      timer = setTimeout(refresh, wait);
    }
  }
  socket.on("connect", refresh);
  socket.on("presence", (event) => {
    if ("admins_online" in event) refresh();
  });
  if (socket.connected) refresh();
  return refresh;
}
