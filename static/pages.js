// Behaviour shared by the owner pages, plain JS in a static file (no inline script; CSP-friendly).
(() => {
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
})();
