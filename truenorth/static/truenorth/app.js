// Small progressive enhancements; every page works without JavaScript.
document.addEventListener("keydown", (event) => {
  // Escape closes an open dropdown (organisation switcher, account menu).
  if (event.key === "Escape") {
    document.querySelectorAll("details.dropdown[open]").forEach((d) => d.removeAttribute("open"));
  }
});

// --- The goal tree: disclosure buttons open a goal's sub-goals (htmx loads them the first time). ---
function treeGroup(toggle) {
  return document.getElementById(toggle.getAttribute("aria-controls"));
}

function setExpanded(toggle, open) {
  const group = treeGroup(toggle);
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
  if (group) group.hidden = !open;
}

document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-tree-toggle]");
  if (toggle) setExpanded(toggle, toggle.getAttribute("aria-expanded") !== "true");
});

// Arrow keys inside a tree: up/down move between visible goals, right opens, left closes or goes
// to the parent goal; Home/End jump to the first/last visible goal.
function visibleLinks(tree) {
  return Array.from(tree.querySelectorAll(".tree-link")).filter((link) => link.offsetParent !== null);
}

document.addEventListener("keydown", (event) => {
  const link = event.target.closest ? event.target.closest(".tree-link, [data-tree-toggle]") : null;
  const tree = link ? link.closest("[data-goal-tree]") : null;
  if (!tree) return;
  const item = link.closest(".tree-item");
  const toggle = item.querySelector(":scope > .tree-row > [data-tree-toggle]");
  const rowLink = item.querySelector(":scope > .tree-row > .tree-link");
  const links = visibleLinks(tree);
  const index = links.indexOf(rowLink);
  let next = null;
  switch (event.key) {
    case "ArrowDown": next = links[index + 1]; break;
    case "ArrowUp": next = links[index - 1]; break;
    case "Home": next = links[0]; break;
    case "End": next = links[links.length - 1]; break;
    case "ArrowRight":
      if (toggle && toggle.getAttribute("aria-expanded") !== "true") toggle.click();
      else if (toggle) next = links[index + 1];
      break;
    case "ArrowLeft":
      if (toggle && toggle.getAttribute("aria-expanded") === "true") setExpanded(toggle, false);
      else {
        const parent = item.parentElement.closest(".tree-item");
        if (parent) next = parent.querySelector(":scope > .tree-row > .tree-link");
      }
      break;
    default: return;
  }
  event.preventDefault();
  if (next) next.focus();
});

// --- Search: "/" focuses the search box (unless typing in a field); on the results page the arrow
// keys move between the search box and the result links, and Enter opens the focused one. ---
function isTyping(target) {
  return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
  // The search page's own box (it holds the query) if there is one, else the navigation's.
  const box = document.getElementById("search-page-q") || document.querySelector("[data-search-input]");
  if (!box) return;
  event.preventDefault();
  box.focus();
  box.select();
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const list = document.querySelector("[data-search-results]");
  const target = event.target;
  if (!list || !target || !target.matches) return;
  const links = Array.from(list.querySelectorAll("a.search-result"));
  const index = links.indexOf(target);
  let next = null;
  if (index === -1) {
    // From a search box, or from nowhere in particular (the page just loaded): down to the first result.
    const fromNowhere = target === document.body || target.id === "main";
    if (!(fromNowhere || target.matches("[data-search-input]")) || event.key !== "ArrowDown") return;
    next = links[0];
  } else if (event.key === "ArrowDown") {
    next = links[index + 1] || links[index];
  } else {
    next = index > 0 ? links[index - 1] : document.getElementById("search-page-q");
  }
  event.preventDefault();
  if (next) next.focus();
});
