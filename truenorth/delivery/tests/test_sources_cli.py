"""The delivery commands in process: `import git|jira|events`, the goal-tree fallback of `import`,
`delivery sources list|add`; bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from truenorth import cli
from truenorth.delivery.models import Commit, DeliveryItem, DeliverySource, ImportRun

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture(autouse=True)
def _no_identity_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)


def run(capsys, persona, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--org", "alpha", "--as", persona.user.email])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and fragment in err, err


def test_sources_add_and_list(capsys, member) -> None:
    code, out, err = run(
        capsys, member, "delivery", "sources", "add", "Tickets", "--kind", "jira",
        "--started", "In Progress", "--started", "In Review", "--done", "Done",
    )  # fmt: skip
    assert code == 0, err
    assert "Added delivery source “Tickets”" in out
    source = DeliverySource.objects.get(name="Tickets")
    assert source.state_mapping == {"started": ["In Progress", "In Review"], "done": ["Done"]}
    code, out, _ = run(capsys, member, "delivery", "sources", "list", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "Tickets"
    code, _, err = run(capsys, member, "delivery", "sources", "add", "tickets", "--kind", "jira")
    one_line_error(code, err, "already exists")
    code, _, err = run(capsys, member, "delivery", "sources", "add", "X", "--kind", "svn")
    one_line_error(code, err, "Choose one of")


def test_import_jira_and_events_files_twice(capsys, member) -> None:
    run(capsys, member, "delivery", "sources", "add", "Tickets", "--kind", "jira")
    code, out, err = run(
        capsys, member, "import", "jira", str(SAMPLES / "jira_changelog.json"), "--source", "tickets"
    )
    assert code == 0, err
    assert "2 items, 5 transitions new" in out and "issues[3]" in out
    code, out, _ = run(
        capsys, member, "import", "jira", str(SAMPLES / "jira_changelog.json"), "--source", "Tickets"
    )
    assert code == 0 and "nothing new" in out
    code, out, _ = run(
        capsys, member, "import", "events", str(SAMPLES / "events.csv"), "--source", "Tickets", "--json"
    )
    assert code == 0 and json.loads(out)["created"]["deployments"] == 3
    runs = ImportRun.objects.order_by("id")
    assert runs[0].digest == runs[1].digest != "" and runs[0].importer == "jira"
    assert DeliveryItem.objects.filter(source__name="Tickets").count() == 4


def test_import_git_reads_any_path_on_the_operators_machine(capsys, member, tmp_path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@x"}  # fmt: skip
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "one"], ["tag", "v1"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, env=env)
    run(capsys, member, "delivery", "sources", "add", "Repo", "--kind", "git")
    code, out, err = run(capsys, member, "import", "git", str(tmp_path), "--source", "Repo")
    assert code == 0, err
    assert "1 branch, 1 commit, 1 release new" in out
    assert Commit.objects.filter(source__name="Repo").count() == 1


def test_import_errors_are_one_line(capsys, member, stakeholder, tmp_path) -> None:
    run(capsys, member, "delivery", "sources", "add", "Tickets", "--kind", "jira")
    code, _, err = run(capsys, member, "import", "jira", str(tmp_path / "missing.csv"), "--source", "Tickets")
    one_line_error(code, err, "does not exist")
    code, _, err = run(capsys, member, "import", "jira", str(SAMPLES / "jira_export.csv"), "--source", "Nope")
    one_line_error(code, err, "No delivery source called “Nope”")
    code, _, err = run(capsys, member, "import", "git", str(tmp_path), "--source", "Tickets")
    one_line_error(code, err, "feeds Git repository")
    code, _, err = run(
        capsys, stakeholder, "import", "jira", str(SAMPLES / "jira_export.csv"), "--source", "Tickets"
    )
    one_line_error(code, err, "role")
    broken = tmp_path / "broken.json"
    broken.write_text('{"issues": [')
    code, _, err = run(capsys, member, "import", "jira", str(broken), "--source", "Tickets")
    one_line_error(code, err, "Not valid JSON")
    code, _, err = run(capsys, member, "import", "azure", str(broken), "--source", "Tickets")
    one_line_error(code, err, "feeds Azure DevOps")


def test_import_without_a_subcommand_is_still_the_goal_tree_import(capsys, member, tmp_path) -> None:
    missing = tmp_path / "tree.json"
    code, _, err = run(capsys, member, "import", str(missing))
    one_line_error(code, err, "FILE")  # the goal-tree import's own error, not "no such command"
    code = cli.main(["import", "--help"])
    out, _ = capsys.readouterr()
    assert code == 0 and "git" in out and "tree" in out


def test_import_github_files(capsys, member) -> None:
    run(capsys, member, "delivery", "sources", "add", "Shop", "--kind", "github")
    code, out, err = run(
        capsys, member, "import", "github", str(SAMPLES / "github_pulls.json"), "--source", "Shop"
    )
    assert code == 0, err
    assert "3 pull requests new" in out and "[1][1]" in out
