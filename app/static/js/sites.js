// Sites in the inbox's settings (admins): the businesses' sites that carry the chat as a
// widget. Adding one, or giving it a new secret, shows the secret once with the tag to
// put on the site's pages; removing one stops its widget. The same actions as the
// `flask sites` commands, over the socket (docs/PROTOCOL.md, "Sites").
import { el, t } from "./dom.js";
import { call } from "./session.js";

const $ = (id) => document.getElementById(id);

export function siteSettings(socket) {
  const dialog = $("sites-dialog");
  const form = $("site-form");
  let sites = [];

  async function load() {
    const answer = await call(socket, "list_sites", {});
    if (answer.ok) draw(answer.sites);
  }

  function snippet(siteKey) {
    const src = `${window.location.origin}/widget.js`;
    return `<script src="${src}" data-site="${siteKey}" data-identity="SIGNED_IDENTITY" async></script>`;
  }

  function showSecret(site, secret, rotated) {
    $("site-secret-title").textContent = rotated
      ? t("A new secret for %(name)s", { name: site.name })
      : t("%(name)s is added", { name: site.name });
    $("site-secret-value").value = secret;
    $("site-snippet").value = snippet(site.site_key);
    $("site-secret").hidden = false;
    $("site-secret-value").focus();
    $("site-secret-value").select();
  }

  function hideSecret() {
    $("site-secret").hidden = true;
    $("site-secret-value").value = "";
  }

  // A button that asks once before it acts: the first press turns it into the question.
  function confirmingButton(label, question, action) {
    const button = el("button", { className: "link-button danger", text: label, attrs: { type: "button" } });
    let armed = false;
    button.addEventListener("click", async () => {
      if (!armed) {
        armed = true;
        button.textContent = question;
        return;
      }
      button.disabled = true;
      await action();
    });
    button.addEventListener("blur", () => {
      armed = false;
      button.textContent = label;
    });
    return button;
  }

  function draw(list) {
    sites = list;
    $("sites-list").replaceChildren(...sites.map((site) => {
      const rotate = confirmingButton(t("New secret"), t("Sign its customers out and make a new secret?"), async () => {
        const answer = await call(socket, "rotate_site_secret", { site_key: site.site_key });
        if (answer.ok) showSecret(site, answer.secret, true);
        else showError(t("That did not work. Try again."));
        load();
      });
      const remove = confirmingButton(t("Remove"), t("Stop its widget and sign its customers out?"), async () => {
        const answer = await call(socket, "remove_site", { site_key: site.site_key });
        if (!answer.ok) showError(t("That did not work. Try again."));
        load();
      });
      const copy = el("button", { className: "link-button", text: t("Copy the tag"), attrs: { type: "button" } });
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(snippet(site.site_key));
          copy.textContent = t("Copied");
        } catch { // no clipboard (a plain-http address, or refused): the tag, to select
          copy.textContent = t("Copying was blocked; select the tag below");
          copy.closest("li").append(el("code", { className: "site-detail", text: snippet(site.site_key) }));
        }
      });
      const details = [
        t("Key: %(key)s", { key: site.site_key }),
        t("Shown on: %(origins)s", { origins: site.origins.join(", ") }),
      ];
      if (site.login_url) details.push(t("Login page: %(url)s", { url: site.login_url }));
      return el("li", { className: "site-row" },
        el("span", { className: "site-name", text: site.name }),
        ...details.map((text) => el("span", { className: "site-detail", text })),
        el("span", { className: "canned-actions" }, copy, rotate, remove));
    }));
    $("sites-empty").hidden = sites.length > 0;
  }

  // What was wrong, said as a person would, and the field that was wrong marked.
  function showError(text, field = null) {
    $("site-error").textContent = text;
    $("site-error").hidden = !text;
    for (const name of ["name", "origins", "login_url"]) {
      const input = form.elements[name];
      if (name === field) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", "site-error");
      } else input.removeAttribute("aria-invalid");
    }
  }

  function errorFor(error) {
    if (error.field === "name") return [t("Give the site a name: 1 to 100 characters."), "name"];
    if (error.field === "origins") {
      return [t("Write each address as a scheme and host, like https://shop.example, one a line."), "origins"];
    }
    if (error.field === "login_url") return [t("The login page must be an http or https address."), "login_url"];
    return [t("The site could not be added. Try again."), null];
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const payload = {
      name: form.elements.name.value,
      origins: form.elements.origins.value.split(/\s+/).filter(Boolean),
    };
    if (form.elements.login_url.value.trim()) payload.login_url = form.elements.login_url.value.trim();
    const answer = await call(socket, "add_site", payload);
    if (!answer.ok) {
      showError(...errorFor(answer.error));
      return;
    }
    showError("");
    form.reset();
    showSecret(answer.site, answer.secret, false);
    load();
  });
  $("site-secret-done").addEventListener("click", () => {
    hideSecret();
    form.elements.name.focus();
  });
  dialog.addEventListener("close", hideSecret); // a secret never waits on screen
  $("settings-sites").addEventListener("click", () => {
    showError("");
    load();
    dialog.showModal();
  });
}
