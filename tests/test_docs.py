"""The README cannot go stale: every setting, command, option and API path the code has is documented,
and every API operation documents its summary and error responses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import typer

from truenorth.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SETTINGS = (ROOT / "truenorth" / "settings.py").read_text()
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
def test_every_environment_variable_is_in_the_readme(name: str) -> None:
    assert f"`{name}`" in README, f"{name} is read in settings.py but missing from README.md"


@pytest.mark.parametrize("name", sorted(set(ENVVAR_OPTION.findall(CLI))))
def test_every_cli_environment_variable_is_in_the_readme(name: str) -> None:
    assert f"`{name}`" in README, f"{name} is read by the CLI but missing from README.md"


# --- command line -----------------------------------------------------------------------------


def test_the_cli_has_commands() -> None:
    assert {"serve", "migrate", "createuser", "demo", "check"} <= set(_cli_commands())
    assert len(app.registered_commands) + len(app.registered_groups) == len(_cli_commands())


@pytest.mark.parametrize("name", sorted(_cli_commands()))
def test_every_cli_command_is_in_the_readme(name: str) -> None:
    assert re.search(rf"`truenorth {re.escape(name)}(?=[\s`\[])", README), (
        f"`truenorth {name}` is a command but missing from README.md"
    )


@pytest.mark.parametrize("name", sorted(_cli_commands()))
def test_every_cli_option_is_in_the_readme(name: str) -> None:
    command = _cli_commands()[name]
    row = next((line for line in README.splitlines() if line.startswith(f"| `truenorth {name}")), "")
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        spellings = [*param.opts, *param.secondary_opts]
        assert any(re.search(rf"{re.escape(s)}\b", row) for s in spellings), (
            f"`truenorth {name}` option {'/'.join(spellings)} is missing from its README row: {row!r}"
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


def test_every_api_path_and_method_is_in_the_readme() -> None:
    missing = []
    for path, method, _ in _operations():
        bounded = re.compile(re.escape(path) + r"(?=[`\s,)]|$)")
        lines = [line for line in README.splitlines() if bounded.search(line)]
        documented_methods = {m.lower() for line in lines for m in re.findall(r"\b[A-Z]{3,6}\b", line)}
        if not lines or method not in documented_methods:
            missing.append(f"{method.upper()} {path}")
    assert not missing, f"API operations missing from README.md: {missing}"


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


def test_the_readme_lists_no_api_path_that_does_not_exist() -> None:
    paths = set(_schema()["paths"])
    documented = set(re.findall(r"/api/v1/[A-Za-z0-9_{}/.-]*[A-Za-z0-9_}]", README))
    extra = {"/api/v1/openapi.json", "/api/v1/docs"}
    assert documented - paths - extra == set()
