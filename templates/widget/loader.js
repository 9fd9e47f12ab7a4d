// The support chat's loader, for a business's own pages (docs/PROTOCOL.md, "The widget"):
//   <script src="https://chat.example/widget.js" data-site="KEY" data-identity="JWT" async></script>
// It draws a launcher and nothing else until the visitor opens the chat; then it frames
// the panel from the chat's origin and hands it the identity by postMessage, to that
// origin only. window.SupportChat: identify(token), reset(), open(), close().
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.SupportChat) return;
  var chatOrigin = new URL(script.src, location.href).origin;
  var site = script.getAttribute("data-site") || "";
  var identity = script.getAttribute("data-identity") || null;
  var locale = script.getAttribute("data-locale") || "";
  var host, root, launcher, badge, panel, frame, frameReady = false, isOpen = false;
  // This file's strings in every language of the chat (translations/), rendered in by
  // the server; the site's data-locale, else the browser's language, picks one.
  var catalogs = {{ catalogs|tojson }};
  var lang = (locale || navigator.language || "en").toLowerCase().split("-")[0];
  var catalog = catalogs[lang] || catalogs.en;
  function t(message, count) {
    return (catalog[message] || message).replace("%(count)s", String(count));
  }

  var css =
    ":host{all:initial}" +
    ".l{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:#2f5bd3;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646;" +
    "display:flex;align-items:center;justify-content:center;padding:0}" +
    ".l:focus-visible{outline:3px solid #9db4f0;outline-offset:2px}" +
    ".l svg{width:26px;height:26px;fill:currentColor}" +
    ".b{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;" +
    "background:#c62828;color:#fff;font:600 12px/20px system-ui,sans-serif;text-align:center}" +
    ".p{position:fixed;right:20px;bottom:88px;width:380px;height:600px;max-height:calc(100vh - 108px);" +
    "border-radius:14px;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.3);z-index:2147483647;background:#fff}" +
    ".p iframe{border:0;width:100%;height:100%;display:block}" +
    "@media (max-width:480px){.p{inset:0;width:100%;height:100%;max-height:none;border-radius:0}}" +
    "[hidden]{display:none!important}";

  function el(tag, attrs) {
    var node = document.createElement(tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    return node;
  }

  function draw() {
    host = el("div", { "data-supportchat": "" });
    root = host.attachShadow({ mode: "open" });
    var style = document.createElement("style");
    style.textContent = css;
    launcher = el("button", { class: "l", type: "button", "aria-label": t("Chat with support"), "aria-expanded": "false" });
    launcher.innerHTML =
      '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
    badge = el("span", { class: "b", hidden: "" });
    launcher.appendChild(badge);
    launcher.addEventListener("click", function () {
      isOpen ? api.close() : api.open();
    });
    panel = el("div", { class: "p", hidden: "", role: "dialog", "aria-label": t("Support chat") });
    root.appendChild(style);
    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(host);
  }

  function post(message) {
    if (frame && frameReady) frame.contentWindow.postMessage(message, chatOrigin);
  }

  function load() {
    if (frame) return;
    var src = chatOrigin + "/widget/frame?site=" + encodeURIComponent(site);
    src += "&locale=" + encodeURIComponent(lang);
    frame = el("iframe", { src: src, title: t("Support chat"), allow: "clipboard-write" });
    panel.appendChild(frame);
  }

  function setUnread(count) {
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = !count;
    launcher.setAttribute("aria-label", count ? t("Chat with support, %(count)s unread", count) : t("Chat with support"));
  }

  window.addEventListener("message", function (event) {
    if (!frame || event.source !== frame.contentWindow || event.origin !== chatOrigin) return;
    var data = event.data || {};
    if (data.type === "supportchat:frame-ready") {
      frameReady = true;
      post({ type: isOpen ? "supportchat:opened" : "supportchat:closed" });
      post({ type: "supportchat:identify", identity: identity });
    } else if (data.type === "supportchat:unread") {
      setUnread(isOpen ? 0 : Number(data.count) || 0);
    } else if (data.type === "supportchat:close") {
      api.close();
    }
  });

  var api = {
    identify: function (token) {
      identity = typeof token === "string" && token ? token : null;
      post({ type: "supportchat:identify", identity: identity });
    },
    reset: function () {
      identity = null;
      setUnread(0);
      post({ type: "supportchat:reset" });
    },
    open: function () {
      load();
      isOpen = true;
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      setUnread(0);
      post({ type: "supportchat:opened" });
    },
    close: function () {
      isOpen = false;
      panel.hidden = true;
      launcher.setAttribute("aria-expanded", "false");
      post({ type: "supportchat:closed" });
      launcher.focus();
    },
  };

  // A reply waiting for a logged-in visitor: the launcher counts it, and the panel
  // loads (hidden) to keep the count live. Nothing else loads until the chat is opened.
  function checkUnread() {
    if (!identity || !window.fetch) return;
    fetch(chatOrigin + "/api/widget/unread", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ site_key: site, identity: identity }),
    })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) {
        if (answer && answer.unread > 0 && !isOpen) {
          load();
          setUnread(answer.unread);
        }
      })
      .catch(function () {});
  }

  function ready() {
    draw();
    checkUnread();
    window.SupportChat = api;
    window.dispatchEvent(new Event("supportchat:ready"));
  }
  if (document.body) ready();
  else document.addEventListener("DOMContentLoaded", ready);
})();
