// Canned replies in the inbox: "/" and a shortcut in the composer offers the team's
// saved answers (arrows to choose, Enter or Tab to insert, Esc to close), and the
// "Saved replies" dialog adds, changes and deletes them. The list comes from the
// server and is kept current by its `canned_replies` broadcasts.
import { el, t } from "./dom.js";
import { call, readMe } from "./session.js";

const $ = (id) => document.getElementById(id);

export function cannedReplies(socket, composer) {
  let replies = [];
  let matches = [];
  let chosen = 0;
  let token = null; // {start, end} of the "/shortcut" being typed
  const input = composer.input;
  const picker = $("canned-picker");

  const load = async () => {
    const answer = await call(socket, "list_canned", {});
    if (answer.ok) setReplies(answer.replies);
  };
  socket.on("connect", load);
  socket.on("canned_replies", (event) => setReplies(event.replies));

  function setReplies(list) {
    replies = list;
    drawManager();
    if (token) offer();
  }

  // The "/word" that ends at the caret, at the start of the draft or after a space.
  function tokenAtCaret() {
    const caret = input.selectionStart;
    const before = input.value.slice(0, caret);
    const match = /(^|\s)\/([a-z0-9_-]*)$/i.exec(before);
    if (!match) return null;
    return { start: caret - match[2].length - 1, end: caret, query: match[2].toLowerCase() };
  }

  function offer() {
    token = tokenAtCaret();
    matches = token ? replies.filter((r) => r.shortcut.startsWith(token.query)
      || r.body.toLowerCase().includes(token.query)) : [];
    if (!token) {
      close();
      return;
    }
    chosen = Math.min(chosen, Math.max(0, matches.length - 1));
    const items = matches.slice(0, 8).map((reply, index) => {
      const item = el("li", {
        className: `canned-option${index === chosen ? " chosen" : ""}`,
        attrs: { role: "option", id: `canned-${reply.id}`, "aria-selected": String(index === chosen) },
      }, el("span", { className: "canned-shortcut", text: `/${reply.shortcut}` }),
      el("span", { className: "canned-body", text: reply.body }));
      item.addEventListener("mousedown", (event) => {
        event.preventDefault(); // keep the focus in the composer
        insert(reply);
      });
      return item;
    });
    if (!items.length) {
      const hint = replies.length
        ? t("No saved reply matches “/%(query)s”.", { query: token.query })
        : t("No saved replies yet.");
      items.push(el("li", { className: "canned-none", text: hint + " " + t("Add one under Saved replies.") }));
    }
    picker.replaceChildren(...items);
    picker.hidden = false;
    if (matches.length) input.setAttribute("aria-activedescendant", `canned-${matches[chosen].id}`);
  }

  function close() {
    token = null;
    picker.hidden = true;
    input.removeAttribute("aria-activedescendant");
  }

  function insert(reply) {
    const at = token || tokenAtCaret();
    if (!at) return;
    input.value = input.value.slice(0, at.start) + reply.body + input.value.slice(at.end);
    const caret = at.start + reply.body.length;
    input.setSelectionRange(caret, caret);
    close();
    composer.updateCounter();
    input.focus();
  }

  input.setAttribute("aria-controls", "canned-picker");
  input.setAttribute("aria-autocomplete", "list");
  input.addEventListener("input", () => { chosen = 0; offer(); });
  input.addEventListener("click", offer);
  input.addEventListener("blur", close);
  composer.keyHook = (event) => {
    if (picker.hidden) return false;
    const shown = Math.min(matches.length, 8);
    if (event.key === "Escape") close();
    else if (event.key === "ArrowDown" && shown) chosen = (chosen + 1) % shown;
    else if (event.key === "ArrowUp" && shown) chosen = (chosen - 1 + shown) % shown;
    else if ((event.key === "Enter" || event.key === "Tab") && shown && !event.shiftKey) {
      insert(matches[chosen]);
      return true;
    } else return false;
    if (!picker.hidden) offer();
    return true;
  };

  // The manager: a dialog with the list and one form for adding or changing a reply.
  const dialog = $("canned-dialog");
  const form = $("canned-form");
  const manages = readMe().role === "admin"; // the team uses them; admins keep them
  form.hidden = !manages;
  let editing = null;

  function drawManager() {
    $("canned-list").replaceChildren(...replies.map((reply) => {
      const edit = el("button", { className: "link-button", text: t("Edit"), attrs: { type: "button" } });
      edit.addEventListener("click", () => startEdit(reply));
      const remove = el("button", { className: "link-button danger", text: t("Delete"), attrs: { type: "button" } });
      remove.addEventListener("click", async () => {
        const answer = await call(socket, "delete_canned", { id: reply.id });
        if (!answer.ok) showError(answer.error.message);
        else if (editing === reply.id) startEdit(null);
      });
      return el("li", { className: "canned-row" },
        el("span", { className: "canned-shortcut", text: `/${reply.shortcut}` }),
        el("span", { className: "canned-body", text: reply.body }),
        manages ? el("span", { className: "canned-actions" }, edit, remove) : null);
    }));
    $("canned-empty").hidden = replies.length > 0;
  }

  function startEdit(reply) {
    editing = reply ? reply.id : null;
    form.elements.shortcut.value = reply ? reply.shortcut : "";
    form.elements.body.value = reply ? reply.body : "";
    $("canned-form-title").textContent = reply
      ? t("Change /%(shortcut)s", { shortcut: reply.shortcut })
      : t("Add a saved reply");
    $("canned-cancel").hidden = !reply;
    showError("");
  }

  // What was wrong, said as a person would, and the field that was wrong marked.
  function showError(text, field = null) {
    $("canned-error").textContent = text;
    $("canned-error").hidden = !text;
    for (const name of ["shortcut", "body"]) {
      if (name === field) form.elements[name].setAttribute("aria-invalid", "true");
      else form.elements[name].removeAttribute("aria-invalid");
    }
    if (field) form.elements[field].setAttribute("aria-describedby", "canned-error");
  }

  function errorFor(error) {
    if (error.code === "conflict") return [t("That shortcut is taken; choose another."), "shortcut"];
    if (error.code === "validation_error" && error.field === "shortcut") {
      return [t("A shortcut is 1 to 32 lower-case letters, digits, - or _ (like refund)."), "shortcut"];
    }
    if (error.code === "validation_error" && error.field === "body") {
      return [t("Write the reply: 1 to 4,000 characters."), "body"];
    }
    if (error.field === "replies") return [t("The team's list of saved replies is full; delete one first."), null];
    return [t("The saved reply could not be saved. Try again."), null];
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const payload = { shortcut: form.elements.shortcut.value, body: form.elements.body.value };
    if (editing) payload.id = editing;
    const answer = await call(socket, "save_canned", payload);
    if (!answer.ok) {
      showError(...errorFor(answer.error));
      return;
    }
    startEdit(null);
    form.elements.shortcut.focus();
  });
  $("canned-cancel").addEventListener("click", () => startEdit(null));
  // From the composer, and from the settings under the list (a phone shows one pane).
  for (const opener of ["canned-open", "settings-canned"]) {
    $(opener).addEventListener("click", () => {
      startEdit(null);
      dialog.showModal();
    });
  }
  startEdit(null);
}
