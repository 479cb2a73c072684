// Hypothesis board: drag a card to another column (native HTML5 drag and drop); the move is an htmx
// POST and the server answers with the whole board, or with the board and an error toast (422) when
// the lifecycle refuses the move. The move buttons on each card are the keyboard alternative.
(function () {
  let dragged = null;

  function csrfHeaders() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    } catch (e) {
      return {};
    }
  }

  // Where the card lands in the column: before the first card whose middle is below the pointer.
  function positionIn(column, y) {
    const cards = Array.from(column.querySelectorAll(".hyp-card")).filter((c) => c !== dragged);
    const index = cards.findIndex((c) => {
      const box = c.getBoundingClientRect();
      return y < box.top + box.height / 2;
    });
    return index === -1 ? cards.length : index;
  }

  document.addEventListener("dragstart", (event) => {
    const card = event.target.closest && event.target.closest(".hyp-card[data-move-url]");
    if (!card) return;
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.id);
  });

  document.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    document.querySelectorAll(".hyp-column.drop-target").forEach((c) => c.classList.remove("drop-target"));
    dragged = null;
  });

  document.addEventListener("dragover", (event) => {
    const column = event.target.closest && event.target.closest(".hyp-column");
    if (!column || !dragged) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    column.classList.add("drop-target");
  });

  document.addEventListener("dragleave", (event) => {
    const column = event.target.closest && event.target.closest(".hyp-column");
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("drop-target");
  });

  document.addEventListener("drop", (event) => {
    const column = event.target.closest && event.target.closest(".hyp-column");
    if (!column || !dragged || !window.htmx) return;
    event.preventDefault();
    const card = dragged;
    window.htmx.ajax("POST", card.dataset.moveUrl, {
      target: "#board",
      swap: "outerHTML",
      headers: csrfHeaders(),
      values: {
        state: column.dataset.state,
        position: String(positionIn(column, event.clientY)),
        version: card.dataset.version,
      },
    });
  });

  // A refused move comes back as 422 with the board and a toast: show it instead of ignoring it.
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr.status === 422 && event.detail.target && event.detail.target.id === "board") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
