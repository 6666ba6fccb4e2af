// Behaviour shared by the owner pages, plain JS in a static file (no inline script; CSP-friendly).
(() => {
  // On a phone the nav is one scrolling row: bring the current page's link into view.
  const current = document.querySelector(".mainnav [aria-current=page]");
  if (current && current.scrollIntoView) current.scrollIntoView({ block: "nearest", inline: "center" });

  // htmx keeps a snapshot of the page for the back button; typed values live in properties, not attributes,
  // so without this a filtered list came back with its results but blank filter inputs.
  document.addEventListener("htmx:beforeHistorySave", () => {
    document.querySelectorAll("input, select, textarea").forEach((el) => {
      if (el.type === "checkbox" || el.type === "radio") {
        el.toggleAttribute("checked", el.checked);
      } else if (el.tagName === "SELECT") {
        el.querySelectorAll("option").forEach((o) => o.toggleAttribute("selected", o.selected));
      } else if (el.tagName === "TEXTAREA") {
        el.textContent = el.value;
      } else if (el.type !== "password" && el.type !== "hidden") {
        el.setAttribute("value", el.value);
      }
    });
    // Remember which rows were open, so a restored page shows them as the owner left them.
    document.querySelectorAll("details[id]").forEach((d) => d.toggleAttribute("open", d.open));
  });

  // Live panels ([data-poll-ms]) ask for a fresh copy of themselves on their own schedule: every second
  // while a call is live, rarely while idle, never while the tab is hidden. The server decides the interval
  // by rendering it, so polling speeds up when a call starts and slows down when it ends.
  const lastPoll = new WeakMap();
  setInterval(() => {
    if (document.visibilityState !== "visible" || !window.htmx) return;
    const now = Date.now();
    document.querySelectorAll("[data-poll-ms]").forEach((el) => {
      if (el.classList.contains("htmx-request")) return;
      const every = Number(el.dataset.pollMs) || 1000;
      const since = lastPoll.get(el) || 0;
      if (!since) { lastPoll.set(el, now); return; }
      if (now - since >= every) {
        lastPoll.set(el, now);
        window.htmx.trigger(el, "poll");
      }
    });
  }, 250);
  document.addEventListener("visibilitychange", () => {
    // Coming back to the tab: refresh at once rather than wait out an idle interval.
    if (document.visibilityState === "visible" && window.htmx) {
      document.querySelectorAll("[data-poll-ms]").forEach((el) => window.htmx.trigger(el, "poll"));
    }
  });

  // A refreshed panel ([data-keep-open]) keeps the rows the owner opened, and where they scrolled.
  const opened = new Map();
  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    if (!target || !target.matches || !target.matches("[data-keep-open]")) return;
    opened.set(target.id, {
      ids: [...target.querySelectorAll("details[id][open]")].map((d) => d.id),
      focus: document.activeElement && target.contains(document.activeElement) ? document.activeElement.id : "",
    });
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    const id = target && target.id;
    const fresh = id && document.getElementById(id);
    const saved = id && opened.get(id);
    if (!fresh || !saved) return;
    opened.delete(id);
    saved.ids.forEach((detailsId) => {
      const d = document.getElementById(detailsId);
      if (d) d.open = true;
    });
    if (saved.focus) {
      const el = document.getElementById(saved.focus);
      if (el) el.focus({ preventScroll: true });
    }
  });
})();
