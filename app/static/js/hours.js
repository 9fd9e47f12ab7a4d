// Business hours and the away message, in the inbox's settings (admins): a time zone,
// each day's ranges ("09:00-12:00, 13:00-18:00"; a range past midnight such as
// "22:00-02:00" belongs to the day it starts), closed dates, and the text of the
// automatic reply customers get while the team is away (docs/PROTOCOL.md).
import { el, LANG, t } from "./dom.js";
import { call } from "./session.js";

const $ = (id) => document.getElementById(id);
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

function dayName(index) {
  // 2024-01-01 was a Monday.
  return new Date(2024, 0, 1 + index).toLocaleDateString(LANG, { weekday: "long" });
}

function rangesText(ranges) {
  return (ranges || []).map(([a, b]) => `${a}-${b}`).join(", ");
}

function parseRanges(text) {
  return text
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => part.split(/\s*[-–~]\s*/).map((clock) => (/^\d:\d\d$/.test(clock) ? `0${clock}` : clock)));
}

export function hoursSettings(socket) {
  const dialog = $("hours-dialog");
  const form = $("hours-form");
  const rows = $("hours-days");

  const inputs = DAYS.map((day, index) => {
    const input = el("input", {
      className: "input mono",
      attrs: { id: `hours-${day}`, name: day, placeholder: t("Closed"), autocomplete: "off" },
    });
    rows.append(el("label", { className: "hours-day", attrs: { for: `hours-${day}` } }, dayName(index)), input);
    return input;
  });
  const zones = $("hours-zones");
  for (const zone of Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : []) {
    zones.append(el("option", { attrs: { value: zone } }));
  }

  function showError(text, field = null) {
    $("hours-error").textContent = text;
    $("hours-error").hidden = !text;
    for (const input of form.querySelectorAll("input, textarea")) input.removeAttribute("aria-invalid");
    const bad = field && (form.elements[field.split(".")[0] === "week" ? field.split(".")[1] : field]);
    if (bad) {
      bad.setAttribute("aria-invalid", "true");
      bad.setAttribute("aria-describedby", "hours-error");
      bad.focus();
    }
  }

  function draw(settings) {
    const hours = settings.hours;
    form.elements.always.checked = !hours;
    form.elements.timezone.value = hours ? hours.timezone : Intl.DateTimeFormat().resolvedOptions().timeZone;
    DAYS.forEach((day, index) => {
      inputs[index].value = hours ? rangesText(hours.week[day]) : "";
    });
    form.elements.closed.value = hours ? hours.closed.join(", ") : "";
    form.elements.away_message.value = settings.away_message || "";
    showAlways();
  }

  function showAlways() {
    $("hours-schedule").disabled = form.elements.always.checked;
  }

  function errorFor(error) {
    const field = error.field || "";
    if (field === "timezone") return t("Choose a time zone from the list, such as Asia/Seoul.");
    if (field.startsWith("week.")) {
      return t("Write %(day)s's hours as ranges like 09:00-18:00, separated by commas.", {
        day: dayName(DAYS.indexOf(field.split(".")[1])),
      });
    }
    if (field === "closed") return t("Write closed dates as YYYY-MM-DD, separated by commas.");
    if (field === "away_message") return t("The away message can be at most 1,000 characters.");
    return t("The settings could not be saved. Try again.");
  }

  form.elements.always.addEventListener("change", showAlways);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const week = {};
    DAYS.forEach((day, index) => {
      const ranges = parseRanges(inputs[index].value);
      if (ranges.length) week[day] = ranges;
    });
    const hours = form.elements.always.checked
      ? null
      : {
        timezone: form.elements.timezone.value.trim(),
        week,
        closed: form.elements.closed.value.split(/[\s,]+/).filter(Boolean),
      };
    const answer = await call(socket, "save_team_settings", {
      hours,
      away_message: form.elements.away_message.value,
    });
    if (!answer.ok) {
      const field = answer.error.field || "";
      showError(errorFor(answer.error), field.startsWith("week.") ? field : field || null);
      return;
    }
    showError("");
    draw(answer);
    $("hours-saved").hidden = false;
  });

  $("settings-hours").addEventListener("click", async () => {
    showError("");
    $("hours-saved").hidden = true;
    const answer = await call(socket, "team_settings", {});
    if (answer.ok) draw(answer);
    dialog.showModal();
  });
}
