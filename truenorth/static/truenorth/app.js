// Small progressive enhancements; every page works without JavaScript.
document.addEventListener("keydown", (event) => {
  // Escape closes an open dropdown (organisation switcher, account menu).
  if (event.key === "Escape") {
    document.querySelectorAll("details.dropdown[open]").forEach((d) => d.removeAttribute("open"));
  }
});
