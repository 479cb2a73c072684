"""The docs cannot go stale: every setting, command, option and API path the code has is documented in
docs/, every API operation documents its summary and error responses, the module map matches the
packages under truenorth/, and every link between the pages (and from the README) resolves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import typer

from truenorth.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()
OPERATIONS = (DOCS / "operations.md").read_text()
CLI_DOC = (DOCS / "cli.md").read_text()
API_DOC = (DOCS / "api.md").read_text()
MODULES = (DOCS / "modules.md").read_text()
PACKAGE = ROOT / "truenorth"
# settings.py and the settings by concern it star-imports (truenorth/conf/).
SETTINGS = "\n".join(
    p.read_text() for p in [ROOT / "truenorth" / "settings.py", *sorted((ROOT / "truenorth" / "conf").glob("*.py"))]
)
CLI = (ROOT / "truenorth" / "cli.py").read_text()

ENV_CALL = re.compile(r"""\benv_(?:str|bool|int|list)\(\s*["']([A-Z][A-Z0-9_]*)["']""")
ENVVAR_OPTION = re.compile(r"""\benvvar\s*=\s*["']([A-Z][A-Z0-9_]*)["']""")
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def _settings_variables() -> list[str]:
    return sorted(set(ENV_CALL.findall(SETTINGS)))


def _cli_commands() -> dict[str, click.Command]:
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    return dict(group.commands)


def _schema() -> dict[str, Any]:
    from truenorth.api import api

    return api.get_openapi_schema()


# --- configuration ----------------------------------------------------------------------------


def test_the_settings_read_environment_variables() -> None:
    found = _settings_variables()
    # Guard the regex itself: a change in how settings read the environment must not make this vacuous.
    assert {"DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "EMAIL_PORT"} <= set(found)
    assert len(found) >= 20


@pytest.mark.parametrize("name", _settings_variables())
def test_every_environment_variable_is_in_the_operations_page(name: str) -> None:
    assert f"`{name}`" in OPERATIONS, f"{name} is read in settings.py but missing from docs/operations.md"


@pytest.mark.parametrize("name", sorted(set(ENVVAR_OPTION.findall(CLI))))
def test_every_cli_environment_variable_is_in_the_cli_page(name: str) -> None:
    assert f"`{name}`" in CLI_DOC, f"{name} is read by the CLI but missing from docs/cli.md"


# --- command line -----------------------------------------------------------------------------


def test_the_cli_has_commands() -> None:
    assert {"serve", "migrate", "createuser", "demo", "check"} <= set(_cli_commands())
    assert len(app.registered_commands) + len(app.registered_groups) == len(_cli_commands())


@pytest.mark.parametrize("name", sorted(_cli_commands()))
def test_every_cli_command_is_in_the_cli_page(name: str) -> None:
    assert re.search(rf"`truenorth {re.escape(name)}(?=[\s`\[])", CLI_DOC), (
        f"`truenorth {name}` is a command but missing from docs/cli.md"
    )


@pytest.mark.parametrize("name", sorted(_cli_commands()))
def test_every_cli_option_is_in_the_cli_page(name: str) -> None:
    command = _cli_commands()[name]
    row = next((line for line in CLI_DOC.splitlines() if line.startswith(f"| `truenorth {name}")), "")
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        spellings = [*param.opts, *param.secondary_opts]
        assert any(re.search(rf"{re.escape(s)}\b", row) for s in spellings), (
            f"`truenorth {name}` option {'/'.join(spellings)} is missing from its docs/cli.md row: {row!r}"
        )


# --- API --------------------------------------------------------------------------------------


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, ops in _schema()["paths"].items()
        for method, op in ops.items()
        if method in HTTP_METHODS
    ]


def test_the_schema_has_the_api() -> None:
    paths = set(_schema()["paths"])
    assert "/api/v1/me" in paths
    assert "/api/v1/orgs/{slug}/members" in paths
    assert all(p.startswith("/api/v1/") for p in paths)


def test_every_api_path_and_method_is_in_the_api_page() -> None:
    missing = []
    for path, method, _ in _operations():
        bounded = re.compile(re.escape(path) + r"(?=[`\s,)]|$)")
        lines = [line for line in API_DOC.splitlines() if bounded.search(line)]
        documented_methods = {m.lower() for line in lines for m in re.findall(r"\b[A-Z]{3,6}\b", line)}
        if not lines or method not in documented_methods:
            missing.append(f"{method.upper()} {path}")
    assert not missing, f"API operations missing from docs/api.md: {missing}"


def test_every_api_operation_has_a_summary_and_documents_its_errors() -> None:
    problems = []
    for path, method, op in _operations():
        where = f"{method.upper()} {path}"
        if not (op.get("summary") or "").strip():
            problems.append(f"{where}: no summary")
        responses = {int(code): spec for code, spec in op.get("responses", {}).items() if str(code).isdigit()}
        statuses = set(responses)
        if 401 not in statuses:
            problems.append(f"{where}: 401 not documented")
        if not any(400 <= s < 500 and s != 401 for s in statuses):
            problems.append(f"{where}: no 4xx error besides 401 documented")
        for status in statuses:
            if status >= 400:
                content = responses[status].get("content", {})
                ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
                if not ref.endswith("/ErrorOut"):
                    problems.append(f"{where}: {status} is not the ErrorOut shape")
        if method != "get" and 403 not in statuses:
            problems.append(f"{where}: a write must document 403 (read-only token)")
    assert not problems, "\n".join(problems)


def test_the_docs_list_no_api_path_that_does_not_exist() -> None:
    paths = set(_schema()["paths"])
    extra = {"/api/v1/openapi.json", "/api/v1/docs"}
    for name, text in _documents().items():
        documented = set(re.findall(r"/api/v1/[A-Za-z0-9_{}/.-]*[A-Za-z0-9_}]", text))
        assert documented - paths - extra == set(), f"{name} names API paths that do not exist"


# --- the pages and their links ----------------------------------------------------------------


def _documents() -> dict[str, str]:
    """README.md, DEVELOPERS.md and every page of docs/, by their path from the repository's root."""
    files = [ROOT / "README.md", ROOT / "DEVELOPERS.md", *sorted(DOCS.glob("*.md"))]
    return {str(f.relative_to(ROOT)): f.read_text() for f in files}


MARKDOWN_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*$", re.MULTILINE)


def _anchor(heading: str) -> str:
    """The id Python-Markdown's toc extension (and GitHub) gives a heading, for the headings we write."""
    text = re.sub(r"[`*_]", "", heading).lower()
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text)).strip("-")


def test_the_readme_starts_with_the_two_commands() -> None:
    assert README.splitlines()[:6] == [
        "# TrueNorth",
        "",
        "```sh",
        "make demo   # installs into .venv, loads demo data into SQLite, serves http://127.0.0.1:8000 "
        "(sign-ins printed)",
        "make test   # installs, then runs lint, type check and all tests (on PostgreSQL too when CI=true)",
        "```",
    ]


def test_every_page_is_in_the_handbook_and_its_contents() -> None:
    from truenorth.handbook import pages

    files = {f.stem for f in DOCS.glob("*.md")}
    assert files == {pages.INDEX, *pages.PAGES}, "docs/*.md and handbook.pages.PAGES must list the same pages"
    contents = (DOCS / "index.md").read_text()
    readme_links = set(MARKDOWN_LINK.findall(README))
    for name in pages.PAGES:
        assert f"]({name}.md)" in contents, f"docs/index.md does not link to {name}.md"
        assert f"docs/{name}.md" in readme_links, f"README.md does not link to docs/{name}.md"


def test_every_link_between_the_pages_resolves() -> None:
    broken = []
    for name, text in _documents().items():
        here = (ROOT / name).parent
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue  # an outside address
            path, _, anchor = target.partition("#")
            file = (here / path).resolve() if path else ROOT / name
            if not file.is_file():
                broken.append(f"{name}: {target} (no such file)")
            elif anchor and file.suffix == ".md":
                anchors = {_anchor(h) for h in HEADING.findall(file.read_text())}
                if anchor not in anchors:
                    broken.append(f"{name}: {target} (no heading with that anchor)")
    assert not broken, broken


# --- the module map ---------------------------------------------------------------------------

MAP_ROW = re.compile(r"^\| `truenorth/(?P<name>[a-z0-9_]+)(?P<kind>/|\.py)` \|", re.MULTILINE)


def _code_modules() -> set[str]:
    """Every package directly under truenorth/ (`name/`) and every top-level module (`name.py`)."""
    packages = {f"{d.name}/" for d in PACKAGE.iterdir() if (d / "__init__.py").is_file()}
    modules = {f.name for f in PACKAGE.glob("*.py") if f.name != "__init__.py"}
    return packages | modules


def _mapped() -> set[str]:
    return {m["name"] + m["kind"] for m in MAP_ROW.finditer(MODULES)}


def test_the_module_map_has_rows() -> None:
    assert {"core/", "strategy/", "measures/", "hypotheses/", "cli.py", "api.py"} <= _mapped()


def test_every_package_and_top_level_module_is_in_the_module_map() -> None:
    missing = sorted(_code_modules() - _mapped())
    assert not missing, f"add a row for each of these to docs/modules.md: {missing}"


def test_every_path_in_the_module_map_exists() -> None:
    gone = sorted(name for name in _mapped() if not (PACKAGE / name).exists())
    assert not gone, f"docs/modules.md lists paths that do not exist: {gone}"


def test_the_handbook_serves_these_files_and_the_package_ships_them() -> None:
    """`truenorth/handbook/docs` is a link to docs/ (an editable install reads the files in place), and
    setuptools copies them into the wheel as package data (a regular install reads the copies)."""
    import tomllib

    from truenorth.handbook import pages

    assert pages.DOCS_DIR.resolve() == DOCS.resolve()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "handbook/docs/*.md" in package_data["truenorth"]
