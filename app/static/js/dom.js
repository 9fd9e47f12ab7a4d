// DOM helpers for every page: translated text, element creation, avatars, times and
// dates, and loading when a button scrolls into view. Text is only ever set with
// textContent: nothing a user typed becomes HTML.

// The page's language (`<html lang>`, chosen by the server) and its strings for the
// scripts: t("Sent"), t("Hi %(name)s!", { name }). The server finds every t() call
// in these files and puts their translations in the page (app/i18n.py).
export const LANG = document.documentElement.lang || "en";
let catalog = null;

export function t(message, values = {}) {
  if (catalog === null) {
    const node = document.getElementById("i18n");
    catalog = node ? JSON.parse(node.textContent) : {};
  }
  const text = catalog[message] || message;
  return text.replace(/%\((\w+)\)s/g, (_, name) => (name in values ? String(values[name]) : ""));
}

export function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined) node.textContent = options.text;
  for (const [name, value] of Object.entries(options.attrs || {})) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

// A message's text as nodes: http(s) addresses become links that open apart from the
// chat and pass it no referrer or reputation; everything else stays text. Trailing
// punctuation (a full stop after an address) is not part of the link.
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/gi;

export function linkified(text) {
  const nodes = [];
  let at = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let href = match[0].replace(/[.,;:!?)\]}'’”]+$/, "");
    const start = match.index;
    if (start > at) nodes.push(document.createTextNode(text.slice(at, start)));
    let url = null;
    try {
      url = new URL(href);
    } catch {
      url = null;
    }
    if (url && (url.protocol === "http:" || url.protocol === "https:")) {
      nodes.push(el("a", {
        text: href,
        attrs: { href: url.href, target: "_blank", rel: "noopener noreferrer nofollow" },
      }));
    } else nodes.push(document.createTextNode(href));
    at = start + href.length;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

export function formatTime(iso) {
  const date = new Date(iso);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay
    ? date.toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleString(LANG, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

// "Today", "Yesterday", or the date ("Nov 28"; with the year when it is not this one).
export function dayLabel(date, now = new Date()) {
  const startOf = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((startOf(now) - startOf(date)) / 86400000);
  if (days === 0) return t("Today");
  if (days === 1) return t("Yesterday");
  const options = { month: "short", day: "numeric" };
  if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return date.toLocaleDateString(LANG, options);
}

export function fullDate(iso) {
  return new Date(iso).toLocaleString(LANG, { dateStyle: "full", timeStyle: "short" });
}

// A person's initials for their avatar ("Amara Okafor" -> "AO"), from text only.
export function initials(name) {
  const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((w) => [...w][0].toUpperCase()).join("") || "?";
}

export function avatar(name) {
  return el("span", { className: "avatar", text: initials(name), attrs: { "aria-hidden": "true" } });
}

// Run `load` whenever `button` (a "Load earlier" or "Load more" button, kept for
// keyboard users) scrolls into view: older messages load as one scrolls up, older
// rooms as one scrolls down. One load at a time; a page too short to scroll keeps
// loading until the button is out of view or gone.
export function loadWhenVisible(button, load) {
  if (!("IntersectionObserver" in window)) return;
  let busy = false;
  const observer = new IntersectionObserver(async (entries) => {
    if (busy || button.hidden || !entries.some((e) => e.isIntersecting)) return;
    busy = true;
    try {
      await load();
    } finally {
      busy = false;
      observer.unobserve(button); // observing again reports where the button is now
      observer.observe(button);
    }
  });
  observer.observe(button);
  // A hidden button has no box; look again whenever it is shown.
  new MutationObserver(() => {
    observer.unobserve(button);
    observer.observe(button);
  }).observe(button, { attributes: true, attributeFilter: ["hidden"] });
}
