"""The handbook's pages: Markdown files in `docs/`, rendered to HTML server-side (no Django here).

The files live once, in the repository's `docs/`; `truenorth/handbook/docs` is a symbolic link to it,
which an editable install follows and which setuptools copies into a wheel as package data, so every
install finds them at `DOCS_DIR`.

Only the pages named in `PAGES` (plus `index`) are ever read: a page name never becomes a path from
user input. The files are trusted (they ship with the code), yet raw HTML in them is escaped rather
than passed through, and links may only be relative `.md` links to known pages, anchors, site paths or
http(s)/mailto addresses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from xml.etree.ElementTree import Element

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

DOCS_DIR = Path(__file__).resolve().parent / "docs"

INDEX = "index"

#: The handbook's pages in reading order (file `docs/<name>.md`); `index.md` is the contents page.
PAGES: tuple[str, ...] = (
    "getting-started",
    "concepts",
    "engagement",
    "delivery",
    "operations",
    "security",
    "api",
    "cli",
    "statistics",
    "engines",
    "exchange-formats",
    "modules",
)

_PAGE_LINK = re.compile(r"^(?:\./)?(?P<name>[a-z0-9-]+)\.md(?P<anchor>#[A-Za-z0-9_-]*)?$")
_SAFE_LINK = re.compile(r"^(?:https?://|mailto:|#|/(?!/))")
_HEADING = re.compile(r"^#\s+(?P<title>.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Page:
    name: str
    title: str
    html: str  # safe to show: raw HTML in the source is escaped, links are checked
    anchors: frozenset[str]  # ids of the page's headings


def known(name: str) -> bool:
    return name == INDEX or name in PAGES


def page_url(base: str, name: str) -> str:
    """The in-app address of a page, under `base` (the handbook's index address, ending in /)."""
    return base if name == INDEX else f"{base}{name}/"


def path_of(name: str) -> Path:
    if not known(name):
        raise KeyError(name)
    return DOCS_DIR / f"{name}.md"


def title_of(name: str) -> str:
    match = _HEADING.search(path_of(name).read_text(encoding="utf-8"))
    return match["title"].replace("`", "") if match else name.replace("-", " ").capitalize()


class _Links(Treeprocessor):
    """Point `other.md#x` links at the in-app page, drop links that go anywhere unexpected, and let wide
    tables scroll on their own."""

    def __init__(self, md: markdown.Markdown, base: str) -> None:
        super().__init__(md)
        self.base = base

    def run(self, root: Element) -> None:
        for link in root.iter("a"):
            href = link.get("href", "")
            if match := _PAGE_LINK.match(href):
                if known(match["name"]):
                    link.set("href", page_url(self.base, match["name"]) + (match["anchor"] or ""))
                else:
                    link.attrib.pop("href", None)
            elif not _SAFE_LINK.match(href):
                link.attrib.pop("href", None)
        tables = [
            (parent, i, child)
            for parent in root.iter()
            for i, child in enumerate(parent)
            if child.tag == "table"
        ]
        for parent, i, table in tables:
            wrapper = Element("div", {"class": "overflow-auto"})
            wrapper.append(table)
            parent[i] = wrapper


class _HandbookExtension(Extension):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.treeprocessors.register(_Links(md, self.base), "handbook_links", 1)
        md.preprocessors.deregister("html_block")  # raw HTML blocks become escaped text
        md.inlinePatterns.deregister("html")  # and so do inline tags such as <source>


def render(name: str, base: str) -> Page:
    """The page `name` (one of `PAGES` or `index`) as HTML whose page links start with `base`."""
    path = path_of(name)
    return _render(name, base, path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _render(name: str, base: str, mtime_ns: int) -> Page:
    md = markdown.Markdown(
        extensions=["tables", "fenced_code", "sane_lists", "toc", _HandbookExtension(base)],
        output_format="html",
    )
    html = md.convert(path_of(name).read_text(encoding="utf-8"))
    anchors = frozenset(_ids(getattr(md, "toc_tokens", [])))
    return Page(name=name, title=title_of(name), html=html, anchors=anchors)


def _ids(tokens: list[dict[str, object]]) -> list[str]:
    ids: list[str] = []
    for token in tokens:
        ids.append(str(token["id"]))
        children = token.get("children")
        if isinstance(children, list):
            ids += _ids(children)
    return ids
