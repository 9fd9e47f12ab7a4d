// The team in the inbox: the Team dialog (everyone sees who is on the team and how
// busy they are; admins invite, change roles and capacity, deactivate), the member's
// own Available / Away switch, the conversation's assign menu, and who else is
// viewing or replying. Names are set with textContent only.
import { el, t } from "./dom.js";
import { call, readCookie } from "./session.js";

const $ = (id) => document.getElementById(id);
const VIEWER_TTL_MS = 60000; // a viewer not heard from for a minute is gone (a dead process says nothing)
const VIEW_REFRESH_MS = 20000;

// An HTTP call of the admins' team endpoints, with the page's cookie and its CSRF header.
async function api(method, path, body) {
  try {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-TOKEN": readCookie("csrf_access_token") || "" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    return response.ok ? { ok: true, ...answer } : { ok: false, error: answer.error || { message: t("Something went wrong. Try again.") } };
  } catch {
    return { ok: false, error: { message: t("No connection. Try again.") } };
  }
}

export function roleLabel(role) {
  return role === "admin" ? t("Admin") : t("Agent");
}

function stateOf(member) {
  if (!member.active) return ["off", t("Deactivated")];
  if (!member.online) return ["offline", t("Offline")];
  return member.available ? ["online", t("Available")] : ["away", t("Away")];
}

export class Team {
  constructor({ socket, me, onChange }) {
    Object.assign(this, { socket, me, onChange });
    this.members = new Map(); // id -> StaffMember
    this.isAdmin = me.role === "admin";
    this.viewers = new Map(); // room id -> Map(user id -> {name, at})
    this.viewing = null;
    this.viewTimer = null;
    socket.on("staff_updated", (member) => {
      this.members.set(member.id, { ...this.members.get(member.id), ...member });
      this.changed();
    });
    socket.on("viewing", (event) => this.noteViewer(event));
    this.setUpDialog();
    this.setUpAvailability();
  }

  async load() {
    const answer = await call(this.socket, "list_staff", {});
    if (!answer.ok) return;
    this.members = new Map(answer.staff.map((member) => [member.id, member]));
    this.changed();
  }

  changed() {
    this.drawAvailability();
    if ($("team-dialog").open) this.draw();
    if (this.onChange) this.onChange();
  }

  // Active members, me first, for the assign menu.
  assignable() {
    return [...this.members.values()]
      .filter((member) => member.active)
      .sort((a, b) => (b.id === this.me.id) - (a.id === this.me.id) || a.name.localeCompare(b.name));
  }

  // --- the member's own availability -------------------------------------------------

  setUpAvailability() {
    $("availability").addEventListener("click", async () => {
      const mine = this.members.get(this.me.id);
      const wanted = !(mine ? mine.available : true);
      const answer = await call(this.socket, "set_availability", { available: wanted });
      if (answer.ok && mine) {
        mine.available = answer.available;
        this.changed();
      }
    });
  }

  drawAvailability() {
    const mine = this.members.get(this.me.id);
    const button = $("availability");
    if (!mine) return;
    button.hidden = false;
    button.dataset.state = mine.available ? "available" : "away";
    button.setAttribute("aria-pressed", String(mine.available));
    button.querySelector(".label").textContent = mine.available ? t("Available") : t("Away");
    button.title = mine.available
      ? t("New conversations can be assigned to you. Click to go away.")
      : t("You get no new conversations while away. Click to be available.");
  }

  // --- the assign menu ---------------------------------------------------------------

  drawAssignee(room) {
    const select = $("assignee");
    if (!room) return;
    const options = [el("option", { text: t("Unassigned"), attrs: { value: "" } })];
    const listed = this.assignable();
    if (room.assignee && !listed.some((member) => member.id === room.assignee.id)) {
      listed.push({ id: room.assignee.id, name: room.assignee.name, active: false });
    }
    for (const member of listed) {
      let label = member.id === this.me.id ? t("%(name)s (you)", { name: member.name }) : member.name;
      if (member.active && member.online === false) label = t("%(name)s · offline", { name: label });
      else if (member.active && member.available === false) label = t("%(name)s · away", { name: label });
      options.push(el("option", { text: label, attrs: { value: String(member.id) } }));
    }
    select.replaceChildren(...options);
    select.value = room.assignee ? String(room.assignee.id) : "";
    select.dataset.roomId = String(room.id);
  }

  async assign(roomId, agentId) {
    return call(this.socket, "assign", { room_id: roomId, agent_id: agentId });
  }

  // --- who else is viewing ------------------------------------------------------------

  view(roomId) {
    this.viewing = roomId;
    clearInterval(this.viewTimer);
    if (!this.socket.connected) return;
    call(this.socket, "view_room", { room_id: roomId });
    if (roomId !== null) {
      this.viewTimer = setInterval(() => call(this.socket, "view_room", { room_id: roomId }), VIEW_REFRESH_MS);
    }
  }

  noteViewer(event) {
    if (event.user.id === this.me.id) return;
    const room = this.viewers.get(event.room_id) || new Map();
    if (event.viewing) room.set(event.user.id, { name: event.user.name, at: Date.now() });
    else room.delete(event.user.id);
    this.viewers.set(event.room_id, room);
    if (event.room_id === this.viewing && this.onChange) this.onChange();
  }

  viewersOf(roomId) {
    const room = this.viewers.get(roomId);
    if (!room) return [];
    const now = Date.now();
    for (const [id, viewer] of room) if (now - viewer.at > VIEWER_TTL_MS) room.delete(id);
    return [...room.values()].map((viewer) => viewer.name);
  }

  // --- the Team dialog -----------------------------------------------------------------

  setUpDialog() {
    $("settings-team").addEventListener("click", async () => {
      await this.load();
      this.draw();
      $("team-dialog").showModal();
    });
    const form = $("invite-form");
    if (!form) return; // agents see the team, admins manage it
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      $("invite-error").hidden = true;
      const body = { email: form.elements.email.value, role: form.elements.role.value };
      if (form.elements.name.value.trim()) body.name = form.elements.name.value.trim();
      const answer = await api("POST", "/api/staff/invitations", body);
      if (!answer.ok) {
        $("invite-error").textContent = answer.error.message;
        $("invite-error").hidden = false;
        const field = form.elements[answer.error.field];
        if (field) field.focus();
        return;
      }
      $("invite-link").value = answer.invite_url;
      $("invite-sent-title").textContent = t("%(email)s is invited", { email: body.email.trim().toLowerCase() });
      $("invite-sent").hidden = false;
      form.reset();
      $("invite-link").focus();
      $("invite-link").select();
    });
    $("invite-copy").addEventListener("click", async () => {
      const link = $("invite-link");
      link.select();
      try {
        await navigator.clipboard.writeText(link.value);
        $("invite-copy").textContent = t("Copied");
      } catch {
        document.execCommand("copy");
      }
      setTimeout(() => { $("invite-copy").textContent = t("Copy link"); }, 2000);
    });
    const auto = $("auto-assign");
    auto.addEventListener("change", async () => {
      const answer = await call(this.socket, "save_team_settings", { auto_assign: auto.checked });
      if (!answer.ok) auto.checked = !auto.checked;
    });
  }

  async draw() {
    const rows = [...this.members.values()].sort(
      (a, b) => (b.active - a.active) || a.name.localeCompare(b.name),
    );
    $("team-list").replaceChildren(...rows.map((member) => this.row(member)));
    if (this.isAdmin) {
      const settings = await call(this.socket, "team_settings", {});
      if (settings.ok) $("auto-assign").checked = settings.auto_assign;
    }
  }

  row(member) {
    const [state, stateText] = stateOf(member);
    const you = member.id === this.me.id ? el("span", { className: "tag", text: t("You") }) : null;
    const name = el("span", { className: "member-name" }, el("span", { className: `dot ${state}`, attrs: { "aria-hidden": "true" } }), member.name, you);
    const load = t("%(open)s of %(capacity)s open", { open: member.open_count, capacity: member.effective_capacity });
    const detail = el("span", { className: "member-detail", text: [member.email, roleLabel(member.role), stateText, member.active ? load : null].filter(Boolean).join(" · ") });
    const item = el("li", { className: `member-row ${member.active ? "" : "inactive"}` }, name, detail);
    if (this.isAdmin) item.append(this.controls(member));
    return item;
  }

  controls(member) {
    const error = el("p", { className: "field-error", attrs: { role: "alert" } });
    error.hidden = true;
    const change = async (body, undo) => {
      error.hidden = true;
      const answer = await api("PATCH", `/api/staff/${member.id}`, body);
      if (!answer.ok) {
        error.textContent = answer.error.message;
        error.hidden = false;
        if (undo) undo();
        return;
      }
      this.members.set(member.id, answer.member);
      this.changed();
    };
    const role = el("select", { className: "input small-input", attrs: { "aria-label": t("Role of %(name)s", { name: member.name }) } },
      el("option", { text: t("Agent"), attrs: { value: "agent" } }),
      el("option", { text: t("Admin"), attrs: { value: "admin" } }));
    role.value = member.role;
    role.disabled = !member.active;
    role.addEventListener("change", () => change({ role: role.value }, () => { role.value = member.role; }));
    const capacity = el("input", {
      className: "input small-input capacity",
      attrs: {
        type: "number", min: "0", max: "1000", inputmode: "numeric",
        placeholder: String(member.effective_capacity),
        "aria-label": t("Most open conversations for %(name)s", { name: member.name }),
        title: t("Most open conversations at once (empty: the team's default)"),
      },
    });
    capacity.value = member.capacity === null ? "" : String(member.capacity);
    capacity.disabled = !member.active;
    capacity.addEventListener("change", () => {
      const value = capacity.value.trim();
      change({ capacity: value === "" ? null : Number(value) }, () => { capacity.value = member.capacity ?? ""; });
    });
    const toggle = el("button", {
      className: `link-button ${member.active ? "danger" : ""}`,
      text: member.active ? t("Deactivate") : t("Reactivate"),
      attrs: { type: "button" },
    });
    let armed = false;
    toggle.addEventListener("click", () => {
      if (member.active && !armed) {
        armed = true;
        toggle.textContent = t("Deactivate %(name)s? Their conversations go back to the queue.", { name: member.name });
        return;
      }
      toggle.disabled = true;
      change({ active: !member.active }).then(() => { toggle.disabled = false; });
    });
    toggle.addEventListener("blur", () => {
      armed = false;
      toggle.textContent = member.active ? t("Deactivate") : t("Reactivate");
    });
    const capacityLabel = el("label", { className: "capacity-label" }, el("span", { text: t("Capacity") }), capacity);
    // nobody deactivates themselves from here (they would be logged out mid-sentence)
    const own = member.id === this.me.id;
    return el("div", { className: "member-controls" }, role, capacityLabel, own ? null : toggle, error);
  }
}
