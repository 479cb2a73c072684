"""The `truenorth` command, in process through truenorth.cli.main, plus the installed console script;
and the typed environment readers in truenorth.env."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from truenorth import cli
from truenorth.accounts.models import User
from truenorth.core import health
from truenorth.demo import DEMO_PASSWORD, DEMO_USERS
from truenorth.env import ConfigError, env_bool, env_int, env_list
from truenorth.history.models import HistoryEntry
from truenorth.history.services import entries_for
from truenorth.orgs.models import Membership, Organisation, Role

COMMANDS = ("serve", "migrate", "createuser", "demo", "check")
STRONG = "Tr1al-and-err0r-north"


@pytest.fixture(autouse=True)
def _no_password_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_PASSWORD", raising=False)


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_usage_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


# --- help -------------------------------------------------------------------------------------


def test_app_help_lists_every_command(capsys):
    code, out, err = _run(capsys, "--help")
    assert code == 0
    assert "Usage: truenorth" in out
    for command in COMMANDS:
        assert command in out
    assert err == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(capsys, command):
    code, out, err = _run(capsys, command, "--help")
    assert code == 0
    assert f"truenorth {command}" in out
    assert "--help" in out
    assert err == ""


def test_no_arguments_shows_help_without_an_empty_error_line(capsys):
    code, out, err = _run(capsys)
    assert code in (0, 2)
    assert "Usage: truenorth" in out + err
    for line in err.splitlines():
        if line.startswith("error:"):
            message = line.removeprefix("error:").split("(see")[0].strip()
            assert message, f"empty error message on stderr: {line!r}"


# --- usage errors -----------------------------------------------------------------------------


def test_unknown_command(capsys):
    code, out, err = _run(capsys, "frobnicate")
    _assert_usage_error(code, err, "frobnicate")
    assert out == ""


def test_unknown_option(capsys):
    code, _, err = _run(capsys, "--frobnicate")
    _assert_usage_error(code, err, "--frobnicate")


def test_unknown_option_of_a_command(capsys):
    code, _, err = _run(capsys, "createuser", "a@example.com", "--frobnicate")
    _assert_usage_error(code, err, "--frobnicate")


@pytest.mark.parametrize(("args", "fragment"), [(["--port", "abc"], "--port"), (["--port", "0"], "--port")])
def test_serve_with_bad_port(capsys, args, fragment):
    code, out, err = _run(capsys, "serve", *args)
    _assert_usage_error(code, err, fragment)
    assert out == ""


def test_createuser_without_email(capsys):
    code, _, err = _run(capsys, "createuser")
    _assert_usage_error(code, err, "EMAIL")


@pytest.mark.django_db
def test_createuser_with_bad_email(capsys):
    code, out, err = _run(capsys, "createuser", "not-an-email", "--password", "x")
    _assert_usage_error(code, err, "email")
    assert out == ""
    assert not User.objects.exists()


@pytest.mark.django_db
def test_createuser_with_weak_password(capsys):
    code, _, err = _run(capsys, "createuser", "good@example.com", "--password", "short")
    _assert_usage_error(code, err, "password")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_createuser_with_taken_email(capsys, owner):
    code, _, err = _run(capsys, "createuser", owner.user.email.upper(), "--password", STRONG)
    _assert_usage_error(code, err, "already exists")


@pytest.mark.django_db
def test_createuser_with_bogus_role(capsys, org_a):
    code, _, err = _run(
        capsys, "createuser", "good@example.com", "--password", STRONG, "--org", "alpha", "--role", "bogus"
    )
    _assert_usage_error(code, err, "--role", "bogus")
    assert not User.objects.filter(email="good@example.com").exists()


@pytest.mark.django_db
def test_createuser_with_unknown_org(capsys, org_a):
    code, _, err = _run(capsys, "createuser", "good@example.com", "--password", STRONG, "--org", "nope")
    _assert_usage_error(code, err, "--org", "nope")
    assert not User.objects.filter(email="good@example.com").exists()


# --- createuser -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_createuser_in_an_organisation(capsys, org_a):
    code, out, err = _run(
        capsys,
        "createuser",
        "Good@Example.com",
        "--name",
        "Good Person",
        "--password",
        STRONG,
        "--org",
        "alpha",
        "--role",
        "stakeholder",
    )
    assert (code, err) == (0, "")
    assert "Created good@example.com" in out
    user = User.objects.get(email="good@example.com")
    assert user.name == "Good Person"
    assert user.check_password(STRONG)
    assert user.password.startswith("argon2")
    membership = Membership.objects.get(organisation=org_a, user=user)
    assert membership.role == Role.STAKEHOLDER
    entry = entries_for(org_a, membership).get()
    assert entry.action == HistoryEntry.Action.CREATED
    assert entry.changes == {"role": {"old": None, "new": Role.STAKEHOLDER}}


@pytest.mark.django_db
def test_createuser_password_from_environment(capsys, monkeypatch):
    monkeypatch.setenv("TRUENORTH_PASSWORD", STRONG)
    code, _, err = _run(capsys, "createuser", "env@example.com")
    assert (code, err) == (0, "")
    assert User.objects.get(email="env@example.com").check_password(STRONG)


@pytest.mark.django_db
def test_createuser_with_create_org(capsys):
    code, _, err = _run(
        capsys, "createuser", "founder@example.com", "--password", STRONG, "--create-org", "Zeta"
    )
    assert (code, err) == (0, "")
    org = Organisation.objects.get(name="Zeta")
    assert org.slug == "zeta"
    membership = Membership.objects.get(organisation=org)
    assert membership.user.email == "founder@example.com"
    assert membership.role == Role.OWNER


# --- demo -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_demo_loads_data_and_is_safe_to_run_twice(capsys):
    code, out, err = _run(capsys, "demo")
    assert code == 0, err
    assert DEMO_PASSWORD in out
    assert set(Organisation.objects.values_list("slug", flat=True)) == {"acme", "acme-labs"}
    acme = Organisation.objects.get(slug="acme")
    assert acme.name == "Acme Outdoor"
    for spec in DEMO_USERS:
        user = User.objects.get(email=spec.email)
        assert user.check_password(DEMO_PASSWORD)
        assert Membership.objects.get(organisation=acme, user=user).role == spec.role
    counts = (
        User.objects.count(),
        Organisation.objects.count(),
        Membership.objects.count(),
        HistoryEntry.objects.count(),
    )

    code, _, err = _run(capsys, "demo")
    assert code == 0, err
    assert counts == (
        User.objects.count(),
        Organisation.objects.count(),
        Membership.objects.count(),
        HistoryEntry.objects.count(),
    )
    owner = User.objects.get(email=DEMO_USERS[0].email)
    assert set(Membership.objects.filter(user=owner).values_list("organisation__slug", flat=True)) == {
        "acme",
        "acme-labs",
    }


# --- check ------------------------------------------------------------------------------------


@pytest.fixture
def vendor_assets(tmp_path, settings):
    """A static directory holding every vendored front-end file, whatever this checkout has."""
    for name in health.VENDOR_FILES:
        path = tmp_path / "static" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("/* test */")
    settings.STATICFILES_DIRS = [tmp_path / "static"]
    settings.STATIC_ROOT = tmp_path / "collected"
    return tmp_path / "static"


@pytest.mark.django_db
def test_check_is_ok_with_a_healthy_database(capsys, vendor_assets):
    results = {r.name: r for r in health.run_checks()}
    assert results["database"].status == "ok"
    assert results["migrations"].status == "ok"
    assert results["front-end assets"].status == "ok"
    assert not [r for r in results.values() if r.status == "error"]

    code, out, err = _run(capsys, "check")
    assert code == 0, out + err
    assert "database" in out
    # No row's status column says error (check names such as "error reports" may contain the word).
    assert not re.search(r"│\s*error\s*│", out)


@pytest.mark.django_db
def test_check_reports_missing_assets_and_exits_1(capsys, tmp_path, settings):
    settings.STATICFILES_DIRS = [tmp_path / "empty"]
    settings.STATIC_ROOT = tmp_path / "collected"
    results = {r.name: r for r in health.run_checks()}
    assert results["front-end assets"].status == "error"
    assert "htmx" in results["front-end assets"].detail

    code, out, _ = _run(capsys, "check")
    assert "error" in out
    assert code == 1  # docs/cli.md: "exit 1 on an error"


@pytest.mark.django_db
def test_check_exits_1_on_any_error(capsys, monkeypatch, vendor_assets):
    monkeypatch.setattr(
        health, "run_checks", lambda: [health.CheckResult("database", "error", "cannot connect")]
    )
    code, out, _ = _run(capsys, "check")
    assert "cannot connect" in out
    assert code == 1


@pytest.mark.django_db
def test_check_warnings_do_not_fail(capsys, monkeypatch, vendor_assets):
    monkeypatch.setattr(health, "run_checks", lambda: [health.CheckResult("debug", "warning", "DEBUG is on")])
    code, _, _ = _run(capsys, "check")
    assert code == 0


# --- the installed console script -------------------------------------------------------------


def _script() -> Path:
    script = Path(sys.executable).parent / "truenorth"
    assert script.exists(), f"{script} is not installed; run `make setup`"
    return script


def test_console_script_help():
    result = subprocess.run(
        [str(_script()), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: truenorth" in result.stdout
    for command in COMMANDS:
        assert command in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["--frobnicate"], ["serve", "--port", "abc"]])
def test_console_script_bad_option(args):
    result = subprocess.run([str(_script()), *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""


# --- truenorth.env ----------------------------------------------------------------------------

VAR = "TRUENORTH_TEST_SETTING"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        (" YES ", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_env_bool_values(monkeypatch, raw, expected):
    monkeypatch.setenv(VAR, raw)
    assert env_bool(VAR, not expected) is expected


def test_env_bool_default_when_unset(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    assert env_bool(VAR, True) is True
    assert env_bool(VAR, False) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "tru", "yes please"])
def test_env_bool_bad_value_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ConfigError) as excinfo:
        env_bool(VAR, False)
    assert str(excinfo.value).startswith(f"{VAR}:")
    assert repr(raw) in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_env_int_values(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    assert env_int(VAR, 7) == 7
    monkeypatch.setenv(VAR, "")
    assert env_int(VAR, 7) == 7
    monkeypatch.setenv(VAR, " 42 ")
    assert env_int(VAR, 7) == 42
    monkeypatch.setenv(VAR, "0")
    assert env_int(VAR, 7, minimum=0) == 0


@pytest.mark.parametrize("raw", ["abc", "1.5", "10s", "0x10"])
def test_env_int_bad_value_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ConfigError, match=rf"^{VAR}: expected an integer"):
        env_int(VAR, 1)


def test_env_int_below_minimum_names_the_variable(monkeypatch):
    monkeypatch.setenv(VAR, "0")
    with pytest.raises(ConfigError, match=rf"^{VAR}: must be at least 1, got 0$"):
        env_int(VAR, 5, minimum=1)
    monkeypatch.setenv(VAR, "-3")
    with pytest.raises(ConfigError, match=rf"^{VAR}:"):
        env_int(VAR, 5, minimum=0)


def test_env_list_values(monkeypatch):
    default = ["a", "b"]
    monkeypatch.delenv(VAR, raising=False)
    result = env_list(VAR, default)
    assert result == ["a", "b"]
    assert result is not default  # a copy: callers may change it safely
    monkeypatch.setenv(VAR, " example.com , ,www.example.com,")
    assert env_list(VAR, default) == ["example.com", "www.example.com"]
    monkeypatch.setenv(VAR, "")
    assert env_list(VAR, default) == []


def test_the_command_does_not_start_duckdb_until_it_needs_it() -> None:
    """`truenorth serve` forks its web workers from the CLI's process: DuckDB, imported there, would leave
    each worker a database instance whose threads did not survive the fork (the worker aborts on exit)."""
    probe = "import sys, truenorth.cli; print(sorted(m for m in ('duckdb', '_duckdb') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
