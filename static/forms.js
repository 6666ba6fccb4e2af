// The business form's helpers, plain JS in a static file (no inline script, so the pages can run under a
// strict Content-Security-Policy): the browser's timezone as the default, focus on the first error after a
// save, a warning before leaving with unsaved changes, service rows added (htmx) and removed, voice samples.
(() => {
  let dirty = false;

  function form() {
    return document.getElementById("business-form");
  }

  function fillBrowserTimezone(root) {
    const input = root.querySelector("[data-browser-timezone]");
    if (!input || input.value) return;
    try {
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) input.value = zone;
    } catch (_e) { /* an old browser: the owner types it */ }
  }

  function focusFirstError(root) {
    const first = root.querySelector("[aria-invalid=true]");
    if (first) {
      first.focus();
      first.scrollIntoView({ block: "center" });
    } else if (root.hasAttribute("data-saved")) {
      const result = root.querySelector("#form-result");
      if (result) result.scrollIntoView({ block: "nearest" });
    }
  }

  function setUp(root) {
    if (!root) return;
    fillBrowserTimezone(root);
    // A failed save leaves the changes unsaved; a successful one clears them.
    dirty = root.hasAttribute("data-has-errors");
  }

  document.addEventListener("input", (event) => {
    if (event.target.closest("[data-unsaved-warning]")) dirty = true;
  });
  document.addEventListener("submit", (event) => {
    if (event.target.matches("[data-unsaved-warning]")) dirty = false;
  });
  window.addEventListener("beforeunload", (event) => {
    if (!dirty) return;
    event.preventDefault();
    event.returnValue = "";
  });

  document.addEventListener("click", (event) => {
    const remove = event.target.closest("[data-remove-row]");
    if (remove) {
      const row = remove.closest("[data-service-row]");
      const rows = row.parentElement.querySelectorAll("[data-service-row]");
      if (rows.length > 1) {
        const next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        const focusable = next && next.querySelector("input");
        if (focusable) focusable.focus();
      } else {
        row.querySelectorAll("input").forEach((input) => { input.value = ""; });
        row.querySelector("input").focus();
      }
      dirty = true;
      return;
    }
    const preview = event.target.closest("[data-voice-preview]");
    if (preview) {
      const select = document.getElementById("voice");
      const audio = new Audio(preview.dataset.srcPattern.replace("VOICE", select.value));
      audio.play().catch(() => {});
    }
  });

  // "Add a service" asks the server for a row numbered after the last one, so ids stay unique.
  document.addEventListener("htmx:configRequest", (event) => {
    const button = event.detail.elt;
    if (!button.matches || !button.matches("[data-add-service]")) return;
    const rows = document.querySelectorAll("#service-rows [data-service-row]");
    let highest = 0;
    rows.forEach((row) => {
      const match = /^service_(\d+)-/.exec(row.querySelector("input").id);
      if (match) highest = Math.max(highest, Number(match[1]));
    });
    event.detail.parameters.index = String(highest + 1);
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    const target = event.detail.target;
    if (target && target.id === "service-rows") {
      const rows = target.querySelectorAll("[data-service-row]");
      const last = rows[rows.length - 1];
      if (last) last.querySelector("input").focus();
      dirty = true;
      return;
    }
    const root = form();
    if (root && (target === root || (target && target.contains && target.contains(root)) || !document.body.contains(target))) {
      setUp(root);
      focusFirstError(root);
    }
  });

  function start() {
    const root = form();
    setUp(root);
    if (root && root.hasAttribute("data-has-errors")) focusFirstError(root);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
