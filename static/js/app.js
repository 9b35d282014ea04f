// Small progressive enhancements; every page works without JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-autosubmit] select").forEach((select) => {
    select.addEventListener("change", () => select.form.requestSubmit());
  });
  document.querySelectorAll(".js-hide").forEach((el) => { el.hidden = true; });
  // The new-batch form: a card is named for its Type (words from templatetags/document_kinds.py, the same the
  // server renders with): heading, number label, status names; the due date only for an invoice, the allocation
  // only for a credit note. Hidden fields keep their values, so what is posted does not change.
  const kindWords = document.getElementById("kind-words");
  if (kindWords) {
    const words = JSON.parse(kindWords.dataset.kindWords);
    document.querySelectorAll("[data-kind-card]").forEach((card) => {
      const type = card.querySelector("select[name$='-kind']");
      if (!type) { return; }
      const relabel = () => {
        const kind = words[type.value] ? type.value : "invoice";
        const these = words[kind];
        card.querySelectorAll("[data-word]").forEach((el) => { el.textContent = these[el.dataset.word]; });
        card.querySelectorAll("[data-kind-only]").forEach((field) => {
          field.hidden = field.dataset.kindOnly !== kind && !field.classList.contains("has-error");
        });
        card.querySelectorAll("select[name$='-status'] option").forEach((option) => {
          if (these.statuses[option.value]) { option.textContent = these.statuses[option.value]; }
        });
      };
      type.addEventListener("change", relabel);
      relabel();
    });
  }
  // Ask before destructive actions: <form data-confirm="Disconnect Xero?">
  document.addEventListener("submit", (event) => {
    const message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  }, true);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { const help = document.getElementById("help"); if (help) help.open = false; }
  });
});
