"""The deployment files in deploy/ agree with the code.

The Dockerfile and compose.yaml are built and started nowhere in CI (no container engine there: they say
so in their headers), so this is what keeps them from rotting: the YAML parses, every command they run
is a real `truenorth` command with real options, every variable they set is one the settings read (or
one the file documents for compose itself), the image is multi-stage with npm at build time only and
runs as a non-root user, and the systemd units start real commands with the documented settings file.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path

import click
import typer
import yaml

from truenorth.cli import app

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
COMPOSE_TEXT = (DEPLOY / "compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SETTINGS_TEXT = "\n".join(
    p.read_text()
    for p in [ROOT / "truenorth" / "settings.py", *sorted((ROOT / "truenorth" / "conf").glob("*.py"))]
)
ENV_CALL = re.compile(r"""\benv_(?:str|bool|int|list)\(\s*["']([A-Z][A-Z0-9_]*)["']""")
SETTINGS_VARIABLES = set(ENV_CALL.findall(SETTINGS_TEXT))
# Read by the runtime, not the settings: Python's own, and the PATH.
RUNTIME_VARIABLES = {
    "PATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
}


def _command(argv: list[str]) -> click.Command:
    """The click command `truenorth <argv>` runs, failing the test if there is none; its options checked."""
    assert argv[0] in ("truenorth", "/opt/truenorth/bin/truenorth"), argv
    command: click.Command = typer.main.get_command(app)
    words = argv[1:]
    while isinstance(command, click.Group):
        assert words and words[0] in command.commands, f"`{' '.join(argv)}`: no such command"
        command, words = command.commands[words[0]], words[1:]
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for word in words:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"`{' '.join(argv)}`: {word} is not an option of it"
    return command


def test_the_settings_variables_are_found() -> None:
    # Guard the regex: a change in how settings read the environment must not make the checks vacuous.
    assert {
        "DATABASE_URL",
        "SECRET_KEY",
        "TRUENORTH_WEB_WORKERS",
        "TRUENORTH_REDIS_URL",
    } <= SETTINGS_VARIABLES


# --- Dockerfile -------------------------------------------------------------------------------------


def _stages() -> list[str]:
    return re.split(r"(?m)^FROM ", DOCKERFILE)[1:]


def test_the_dockerfile_is_multi_stage_with_npm_at_build_time_only() -> None:
    stages = _stages()
    assert len(stages) == 3
    assert "npm ci" in stages[0] and " AS assets" in stages[0].splitlines()[0]
    assert "--from=assets" in stages[1]
    final = stages[-1]
    assert "npm" not in final and "node" not in final.lower()
    assert "--from=build /opt/truenorth" in final


def test_the_dockerfile_copies_the_front_end_files_make_assets_copies() -> None:
    # Loaded from its path: importing it as `scripts.vendor_assets` made mypy see the file twice.
    spec = importlib.util.spec_from_file_location("vendor_assets", ROOT / "scripts" / "vendor_assets.py")
    assert spec is not None and spec.loader is not None
    vendor_assets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vendor_assets)
    files: dict[str, str] = vendor_assets.FILES

    assets = _stages()[0]
    for source, target in files.items():
        assert f"node_modules/{source}" in assets, source
        assert f"vendor/{Path(target).parent}" in assets, target


def test_the_image_runs_truenorth_serve_as_a_non_root_user() -> None:
    final = _stages()[-1]
    cmd = re.search(r"(?m)^CMD (\[.*\])$", final)
    assert cmd, "the image needs a CMD in exec form"
    argv = json.loads(cmd[1])
    assert argv == ["truenorth", "serve"]
    _command(argv)
    user = re.search(r"(?m)^USER (\S+)$", final)
    assert user and user[1] not in ("root", "0")
    assert final.index("USER ") < final.index("CMD ")
    assert "useradd --system --uid 10001 --gid truenorth" in final


def test_the_image_sets_only_variables_the_code_reads_and_listens_where_it_says() -> None:
    final = _stages()[-1]
    env_block = re.search(r"(?ms)^ENV (.*?)(?=^\S)", final)
    assert env_block
    names = set(re.findall(r"([A-Z][A-Z0-9_]*)=", env_block[1]))
    assert names - RUNTIME_VARIABLES <= SETTINGS_VARIABLES, names - RUNTIME_VARIABLES - SETTINGS_VARIABLES
    assert "TRUENORTH_WEB_BIND=0.0.0.0:8000" in env_block[1] and "EXPOSE 8000" in final
    assert "/healthz" in final  # the HEALTHCHECK


def test_the_files_say_they_are_untested() -> None:
    for text in (DOCKERFILE, COMPOSE_TEXT):
        assert "UNTESTED: built" in text


# --- compose.yaml -----------------------------------------------------------------------------------


def test_compose_has_the_web_server_the_worker_postgresql_and_redis() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"web", "worker", "db", "redis"}
    assert services["db"]["image"].split(":")[0].endswith("postgres")
    assert services["redis"]["image"].split(":")[0].endswith("redis")
    web, worker = services["web"], services["worker"]
    assert _command(web["command"]).name == "serve"
    assert _command(worker["command"]).name == "worker"
    for service in (web, worker):
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in env["DATABASE_URL"]
        assert env["TRUENORTH_REDIS_URL"].startswith("redis://redis:6379")
        assert "truenorth-data:/var/lib/truenorth" in service["volumes"]
    # The worker waits for the web server, which applies the migrations.
    assert worker["depends_on"]["web"]["condition"] == "service_healthy"


def test_compose_sets_only_variables_the_settings_read() -> None:
    for name in ("web", "worker"):
        unknown = set(COMPOSE["services"][name]["environment"]) - SETTINGS_VARIABLES
        assert not unknown, f"{name}: {unknown} are read by no setting"


def test_every_variable_compose_substitutes_is_in_its_example_env_file() -> None:
    substituted = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE_TEXT))
    example = (DEPLOY / "compose.env.example").read_text()
    documented = set(re.findall(r"(?m)^#?\s*([A-Z][A-Z0-9_]*)=", example))
    assert substituted - {"POSTGRES_PASSWORD", "TRUENORTH_PORT"} <= SETTINGS_VARIABLES
    assert substituted >= {"POSTGRES_PASSWORD", "SECRET_KEY", "TRUENORTH_ENCRYPTION_KEY"}
    missing = {n for n in substituted if re.search(rf"\$\{{{n}:\?", COMPOSE_TEXT)} - documented
    assert not missing, f"required in compose.yaml but not in compose.env.example: {missing}"


# --- systemd ----------------------------------------------------------------------------------------


def _unit(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_the_systemd_units_start_real_commands_with_the_settings_file() -> None:
    web, worker = _unit("truenorth-web.service"), _unit("truenorth-worker.service")
    assert _command(shlex.split(web["ExecStart"][0])).name == "serve"
    assert _command(shlex.split(worker["ExecStart"][0])).name == "worker"
    for unit in (web, worker):
        assert unit["User"] == ["truenorth"] and unit["EnvironmentFile"] == ["/etc/truenorth/truenorth.env"]
        assert unit["StateDirectory"] == ["truenorth"]
    assert web["Type"] == ["notify"]  # gunicorn tells systemd when it is ready
    assert "truenorth-web.service" in worker["After"][0]


def test_the_example_settings_file_names_only_variables_the_settings_read() -> None:
    example = (DEPLOY / "systemd" / "truenorth.env.example").read_text()
    names = set(re.findall(r"(?m)^#?\s*([A-Z][A-Z0-9_]*)=", example))
    assert {"DATABASE_URL", "SECRET_KEY", "TRUENORTH_ENCRYPTION_KEY", "TRUENORTH_DATA_DIR"} <= names
    assert names <= SETTINGS_VARIABLES, names - SETTINGS_VARIABLES
