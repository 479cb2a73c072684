"""The handbook at /docs/: every page renders, its links lead to pages that exist, nothing outside the
known pages can be read, and raw HTML in a page is escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from truenorth.handbook import pages

HREF = re.compile(r'href="(?P<href>[^"]*)"')
ID = re.compile(r'\bid="(?P<id>[^"]+)"')


def _article(html: str) -> str:
    start = html.index('data-testid="handbook-page"')
    return html[start : html.index("</article>", start)]


@pytest.mark.django_db
def test_the_index_lists_every_page() -> None:
    response = Client().get("/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "TrueNorth handbook" in html
    for name in pages.PAGES:
        assert f'href="/docs/{name}/"' in _article(html), name


@pytest.mark.django_db
def test_every_page_renders_and_every_link_between_pages_works() -> None:
    client = Client()
    rendered = {"/docs/": client.get("/docs/").content.decode()}
    for name in pages.PAGES:
        response = client.get(f"/docs/{name}/")
        assert response.status_code == 200, name
        assert response["Content-Type"].startswith("text/html")
        rendered[f"/docs/{name}/"] = response.content.decode()
    checked = 0
    for url, html in rendered.items():
        for href in HREF.findall(_article(html)):
            if not href.startswith("/docs/"):
                continue
            path, _, anchor = href.partition("#")
            assert path in rendered, f"{url} links to {href}, which is not a handbook page"
            if anchor:
                assert anchor in ID.findall(rendered[path]), f"{url} links to {href}: no such heading"
            checked += 1
    assert checked >= 20  # the pages do link to each other


@pytest.mark.django_db
def test_the_handbook_is_public_and_in_the_navigation(member) -> None:
    anonymous = Client().get("/accounts/login/").content.decode()
    signed_in = member.client.get("/docs/").content.decode()
    for html in (anonymous, signed_in):
        assert 'href="/docs/" data-testid="nav-handbook"' in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/docs/no-such-page/",
        "/docs/index/",  # the contents page is /docs/ only
        "/docs/README/",
        "/docs/../settings.py",
        "/docs/..%2f..%2fpyproject.toml/",
        "/docs/%2e%2e/%2e%2e/README.md",
        "/docs/modules.md",
        "/docs/modules/../../DEVELOPERS/",
    ],
)
def test_an_unknown_page_or_another_file_is_404(url: str) -> None:
    assert Client().get(url).status_code == 404


@pytest.mark.django_db
def test_the_handbook_only_reads() -> None:
    assert Client().post("/docs/cli/").status_code == 405


def test_page_names_never_become_paths() -> None:
    for name in ("../pyproject", "../../truenorth/settings", "/etc/passwd", "README", ""):
        assert not pages.known(name)
        with pytest.raises(KeyError):
            pages.render(name, "/docs/")


def test_raw_html_is_escaped_and_only_safe_links_are_kept(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "cli.md").write_text(
        "# Trap\n\n<script>alert(1)</script>\n\nImported from <source> by <b onclick=x>me</b>.\n\n"
        "[page](api.md#errors) [ext](https://example.com/x) [js](javascript:alert(1)) "
        "[unknown](secrets.md) [file](../pyproject.toml)\n\n| a |\n|---|\n| 1 |\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(pages, "DOCS_DIR", tmp_path)
    pages._render.cache_clear()
    try:
        page = pages.render("cli", "/docs/")
    finally:
        pages._render.cache_clear()
    assert page.title == "Trap"
    assert "<script" not in page.html and "&lt;script&gt;" in page.html
    assert "<source" not in page.html and "<b " not in page.html
    hrefs = HREF.findall(page.html)
    assert hrefs == ["/docs/api/#errors", "https://example.com/x"]
    assert '<div class="overflow-auto"><table>' in page.html
