"""The Vision commands, in process through truenorth.cli.main: identity, exit codes, one-line errors,
products, goals, co-authoring, lint, export and import."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from truenorth import cli
from truenorth.strategy import services
from truenorth.strategy.models import ChangeProposal, CheckIn, Comment, Endorsement, Goal, Product

GOOD_OUTCOME = "Hikers plan their weekend trips in the app instead of on paper maps."


@pytest.fixture(autouse=True)
def _no_identity_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _as(persona, *args: str) -> list[str]:
    return [*args, "--org", "alpha", "--as", persona.user.email]


def _assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture
def product(owner, member):
    return services.create_product(owner.membership, owner.user, name="Trail", owner_id=member.user.pk)


def _good_goal(persona, product, **extra):
    fields = {
        "title": "Hikers plan every trip with us",
        "product_id": product.pk,
        "outcome": GOOD_OUTCOME,
        "owner_id": persona.user.pk,
        "target_date": dt.date.today() + dt.timedelta(days=90),
        "status": Goal.Status.ACTIVE,
        "targets": [{"name": "Weekly planners", "baseline": 100, "target": 200}],
    }
    return services.create_goal(persona.membership, persona.user, **(fields | extra))


# --- identity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["lint", "products", "goals", "export", "import"])
def test_help(capsys, command):
    code, out, err = _run(capsys, command, "--help")
    assert code == 0
    assert f"truenorth {command}" in out
    assert err == ""


@pytest.mark.django_db
def test_outsider_gets_the_same_not_found_as_a_missing_org(capsys, outsider, product):
    code, _, err_outsider = _run(capsys, "products", "list", "--org", "alpha", "--as", outsider.user.email)
    line = _assert_one_line_error(code, err_outsider, "alpha")
    code, _, err_missing = _run(capsys, "products", "list", "--org", "nope", "--as", outsider.user.email)
    assert _assert_one_line_error(code, err_missing) == line.replace("alpha", "nope")
    code, _, err_nobody = _run(capsys, "products", "list", "--org", "alpha", "--as", "nobody@example.com")
    assert _assert_one_line_error(code, err_nobody) == line.replace(outsider.user.email, "nobody@example.com")
    assert "Trail" not in err_outsider


@pytest.mark.django_db
def test_outsider_cannot_export_a_product_of_another_organisation(capsys, outsider, product):
    code, out, err = _run(
        capsys, "export", str(product.pk), "--org", "bravo-secret", "--as", outsider.user.email
    )
    _assert_one_line_error(code, err, "No such product")
    assert "Trail" not in out + err


@pytest.mark.django_db
def test_identity_is_required(capsys, owner):
    code, _, err = _run(capsys, "products", "list", "--as", owner.user.email)
    _assert_one_line_error(code, err, "--org", "TRUENORTH_ORG")
    code, _, err = _run(capsys, "products", "list", "--org", "alpha")
    _assert_one_line_error(code, err, "--as", "TRUENORTH_USER")


@pytest.mark.django_db
def test_identity_from_the_environment(capsys, monkeypatch, owner, product):
    monkeypatch.setenv("TRUENORTH_ORG", "alpha")
    monkeypatch.setenv("TRUENORTH_USER", owner.user.email)
    code, out, err = _run(capsys, "products", "list", "--json")
    assert (code, err) == (0, "")
    assert [p["name"] for p in json.loads(out)] == ["Trail"]


# --- lint -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_lint_exits_0_without_errors(capsys, owner, product):
    _good_goal(owner, product)
    code, out, err = _run(capsys, *_as(owner, "lint", "--product", str(product.pk)))
    assert (code, err) == (0, "")
    assert "No findings" in out


@pytest.mark.django_db
def test_lint_warnings_only_exit_0(capsys, owner, product):
    _good_goal(owner, product, target_date=None)
    code, out, _ = _run(capsys, *_as(owner, "lint", "--json"))
    assert code == 0
    assert [f["rule"] for f in json.loads(out)] == ["no-date"]


@pytest.mark.django_db
def test_lint_exits_1_on_an_error_finding(capsys, owner, product):
    goal = _good_goal(owner, product, targets=[])
    code, out, err = _run(capsys, *_as(owner, "lint", "--json"))
    assert code == 1
    assert err == ""
    findings = json.loads(out)
    assert {"goal": goal.pk, "rule": "no-measure", "severity": "error"}.items() <= findings[0].items()
    code, out, _ = _run(capsys, *_as(owner, "lint"))
    assert code == 1
    assert "no-measure" in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--product", "abc"], "--product"),
        (["--frobnicate"], "--frobnicate"),
        (["--product", "999999"], "product"),
    ],
)
def test_lint_bad_usage_exits_2(capsys, owner, product, args, fragment):
    code, _, err = _run(capsys, *_as(owner, "lint", *args))
    _assert_one_line_error(code, err, fragment)


# --- products ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_products_create_and_list(capsys, owner, member):
    code, out, err = _run(
        capsys,
        *_as(
            owner,
            "products",
            "create",
            "Gear Shop",
            "--vision",
            "Kit for every trip.",
            "--product-goal",
            "Returns halve.",
            "--owner",
            member.user.email,
            "--team",
            "Shop team",
        ),
    )
    assert (code, err) == (0, ""), err
    assert "Created product" in out
    product = Product.objects.get(name="Gear Shop")
    assert product.owner == member.user
    assert [t.name for t in product.teams.all()] == ["Shop team"]
    code, out, _ = _run(capsys, *_as(owner, "products", "list", "--json"))
    assert json.loads(out)[0] | {} == {
        "id": product.pk,
        "name": "Gear Shop",
        "owner": member.user.email,
        "teams": ["Shop team"],
        "goals": 0,
        "work_items": 0,
        "archived": False,
    }
    code, out, _ = _run(capsys, *_as(owner, "products", "list"))
    assert code == 0
    assert "Gear Shop" in out


@pytest.mark.django_db
def test_products_create_errors(capsys, owner, stakeholder, product):
    code, _, err = _run(capsys, *_as(owner, "products", "create", "trail"))
    _assert_one_line_error(code, err, "name", "already exists")
    code, _, err = _run(capsys, *_as(owner, "products", "create", "New", "--owner", "nobody@example.com"))
    _assert_one_line_error(code, err, "--owner")
    code, _, err = _run(capsys, *_as(stakeholder, "products", "create", "New"))
    _assert_one_line_error(code, err, "role")
    assert not Product.objects.filter(name="New").exists()


# --- goals ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_goal_lifecycle(capsys, owner, member, stakeholder, product):
    code, out, err = _run(
        capsys,
        *_as(
            owner,
            "goals",
            "create",
            "Hikers plan every trip with us",
            "--product",
            str(product.pk),
            "--outcome",
            GOOD_OUTCOME,
            "--owner",
            owner.user.email,
            "--date",
            "2031-12-31",
            "--status",
            "active",
            "--target",
            "Weekly planners:100:200:people",
            "--target",
            "Time to plan:30:10:min:decrease",
        ),
    )
    assert (code, err) == (0, ""), err
    root = Goal.objects.get(title="Hikers plan every trip with us")
    assert [(t.name, t.direction) for t in root.targets.all()] == [
        ("Weekly planners", "increase"),
        ("Time to plan", "decrease"),
    ]
    code, _, err = _run(
        capsys,
        *_as(
            owner, "goals", "create", "Offline maps", "--product", str(product.pk), "--parent", str(root.pk)
        ),
    )
    assert code == 0, err
    child = Goal.objects.get(title="Offline maps")
    assert child.level == "intermediate"
    _run(
        capsys,
        *_as(
            owner, "goals", "create", "Route sharing", "--product", str(product.pk), "--parent", str(root.pk)
        ),
    )
    second = Goal.objects.get(title="Route sharing")

    code, out, _ = _run(capsys, *_as(owner, "goals", "list", "--product", str(product.pk), "--json"))
    assert code == 0
    assert [(r["title"], r["depth"]) for r in json.loads(out)] == [
        ("Hikers plan every trip with us", 0),
        ("Offline maps", 1),
        ("Route sharing", 1),
    ]
    code, out, _ = _run(capsys, *_as(owner, "goals", "list", "--product", str(product.pk)))
    assert "Offline maps" in out

    code, _, err = _run(capsys, *_as(owner, "goals", "move", str(second.pk), "--position", "0"))
    assert code == 0, err
    assert list(root.children.order_by("position").values_list("title", flat=True)) == [
        "Route sharing",
        "Offline maps",
    ]

    code, _, err = _run(
        capsys,
        *_as(owner, "goals", "update", str(child.pk), "--title", "Offline maps everywhere", "--weight", "2"),
    )
    assert code == 0, err
    child.refresh_from_db()
    assert (child.title, child.weight, child.version) == ("Offline maps everywhere", 2.0, 2)
    code, _, err = _run(
        capsys, *_as(owner, "goals", "update", str(child.pk), "--title", "Stale", "--version", "1")
    )
    _assert_one_line_error(code, err, "version")

    target = root.targets.get(name="Weekly planners")
    code, out, err = _run(
        capsys,
        *_as(
            owner,
            "goals",
            "checkin",
            str(root.pk),
            "--status",
            "on_track",
            "--confidence",
            "8",
            "--narrative",
            "Good week.",
            "--target",
            str(target.pk),
            "--value",
            "150",
        ),
    )
    assert code == 0, err
    observation = CheckIn.objects.get(goal=root).observation
    assert observation is not None
    assert observation.value == 150

    code, out, err = _run(
        capsys, *_as(stakeholder, "goals", "propose", str(root.pk), "--target", f"{target.pk}=250")
    )
    assert code == 0, err
    proposal = ChangeProposal.objects.get(goal=root)
    code, _, err = _run(capsys, *_as(owner, "goals", "accept", str(proposal.pk)))
    assert code == 0, err
    target.refresh_from_db()
    assert target.target == 250
    _run(capsys, *_as(stakeholder, "goals", "propose", str(root.pk), "--title", "Something else"))
    other = ChangeProposal.objects.get(goal=root, state="open")
    code, _, err = _run(capsys, *_as(owner, "goals", "reject", str(other.pk)))
    _assert_one_line_error(code, err, "reason")
    code, _, err = _run(
        capsys, *_as(owner, "goals", "reject", str(other.pk), "--reason", "Keep the wording.")
    )
    assert code == 0, err

    assert _run(capsys, *_as(member, "goals", "endorse", str(root.pk), "--note", "Clear."))[0] == 0
    assert _run(capsys, *_as(stakeholder, "goals", "concern", str(root.pk), "Is 250 realistic?"))[0] == 0
    assert (
        _run(
            capsys, *_as(stakeholder, "goals", "comment", str(root.pk), f"Ask @{member.user.email} about it")
        )[0]
        == 0
    )
    assert Endorsement.objects.filter(goal=root).count() == 2
    assert Comment.objects.get(goal=root).author == stakeholder.user

    code, out, _ = _run(capsys, *_as(owner, "goals", "show", str(root.pk), "--json"))
    shown = json.loads(out)
    assert shown["targets"][0]["latest"] == 150
    assert [p["state"] for p in shown["proposals"]] == ["rejected", "accepted"]
    assert len(shown["comments"]) == 1
    code, out, _ = _run(capsys, *_as(owner, "goals", "show", str(root.pk)))
    assert code == 0
    assert "Is 250 realistic?" in out

    code, _, err = _run(capsys, *_as(owner, "goals", "archive", str(root.pk)))
    _assert_one_line_error(code, err, "archived")
    assert _run(capsys, *_as(owner, "goals", "archive", str(second.pk)))[0] == 0
    assert Goal.objects.get(pk=second.pk).archived_at is not None
    assert _run(capsys, *_as(owner, "goals", "archive", str(second.pk), "--restore"))[0] == 0
    assert Goal.objects.get(pk=second.pk).archived_at is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["goals", "create"], "TITLE"),
        (["goals", "create", "X", "--level", "galactic"], "level"),
        (["goals", "create", "X", "--target", "only-a-name"], "--target"),
        (["goals", "create", "X", "--target", "N:ten:20"], "baseline"),
        (["goals", "create", "X", "--date", "soon"], "target_date"),
        (["goals", "create", "X", "--owner", "stakeholder@a.example"], "owner"),
        (["goals", "show", "abc"], "GOAL_ID"),
        (["goals", "show", "999999"], "No such goal"),
        (["goals", "update", "999999", "--title", "x"], "No such goal"),
        (["goals", "move", "1"], "--parent"),
        (["goals", "propose", "1"], "nothing proposed"),
        (["goals", "checkin", "1", "--status", "fine"], "--confidence"),
        (["export", "1", "--format", "pdf"], "--format"),
    ],
)
def test_goal_commands_bad_input_is_one_line(capsys, owner, stakeholder, product, args, fragment):
    code, out, err = _run(capsys, *_as(owner, *args))
    _assert_one_line_error(code, err, fragment)
    assert out == ""
    assert not Goal.objects.filter(title="X").exists()


@pytest.mark.django_db
def test_checkin_rules(capsys, owner, member, product):
    goal = _good_goal(member, product)
    code, _, err = _run(
        capsys, *_as(owner, "goals", "checkin", str(goal.pk), "--status", "fine", "--confidence", "5")
    )
    _assert_one_line_error(code, err, "status")
    code, _, err = _run(
        capsys, *_as(member, "goals", "checkin", str(goal.pk), "--status", "on_track", "--confidence", "11")
    )
    _assert_one_line_error(code, err, "confidence")
    assert not CheckIn.objects.exists()


@pytest.mark.django_db
def test_overdue(capsys, owner, member, product):
    goal = _good_goal(member, product)
    Goal.objects.filter(pk=goal.pk).update(created_at=goal.created_at - dt.timedelta(days=30))
    code, out, _ = _run(capsys, *_as(owner, "goals", "overdue", "--json"))
    assert code == 0
    [row] = json.loads(out)
    assert (row["goal"], row["owner"], row["days_overdue"]) == (goal.pk, member.user.email, 23)
    code, out, _ = _run(capsys, *_as(owner, "goals", "overdue", "--mine"))
    assert "No check-ins overdue" in out
    code, out, _ = _run(capsys, *_as(member, "goals", "overdue", "--mine", "--product", str(product.pk)))
    assert "Hikers plan every trip" in out


# --- export and import ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("suffix", "parse"), [(".json", json.loads), (".yaml", yaml.safe_load), (".yml", yaml.safe_load)]
)
def test_export_and_import_files(capsys, tmp_path, owner, product, suffix, parse):
    root = _good_goal(owner, product)
    services.create_goal(
        owner.membership, owner.user, title="Offline maps", product_id=product.pk, parent_id=root.pk
    )
    fmt = "json" if suffix == ".json" else "yaml"
    path = tmp_path / f"trail{suffix}"
    code, out, err = _run(capsys, *_as(owner, "export", str(product.pk), "--format", fmt, "-o", str(path)))
    assert (code, err) == (0, ""), err
    assert str(path.name) in out
    doc = parse(path.read_text())
    assert doc["format"] == "truenorth.goal-tree"
    code, out, err = _run(capsys, *_as(owner, "import", str(path), "--name", "Trail copy"))
    assert (code, err) == (0, ""), err
    assert "Imported “Trail copy”" in out
    assert "2 goals (0 archived), 1 targets, 0 observations, 0 links" in out
    copy = Product.objects.get(name="Trail copy")
    assert Goal.objects.filter(product=copy).count() == 2


@pytest.mark.django_db
def test_export_to_stdout_and_markdown(capsys, owner, product):
    _good_goal(owner, product)
    code, out, err = _run(capsys, *_as(owner, "export", str(product.pk)))
    assert (code, err) == (0, "")
    assert json.loads(out)["product"]["name"] == "Trail"
    code, out, _ = _run(capsys, *_as(owner, "export", str(product.pk), "--format", "yaml"))
    assert yaml.safe_load(out)["goals"][0]["title"] == "Hikers plan every trip with us"
    code, out, _ = _run(capsys, *_as(owner, "export", str(product.pk), "--format", "markdown"))
    assert out.startswith("# Trail\n")
    assert "### Hikers plan every trip with us" in out


@pytest.mark.django_db
def test_import_errors_are_one_line_and_create_nothing(capsys, tmp_path, owner, product):
    _good_goal(owner, product)
    path = tmp_path / "trail.txt"
    code, _, err = _run(capsys, *_as(owner, "export", str(product.pk), "-o", str(path)))
    assert code == 0, err
    code, _, err = _run(capsys, *_as(owner, "import", str(path)))
    _assert_one_line_error(code, err, "--format")
    code, _, err = _run(capsys, *_as(owner, "import", str(path), "--format", "json"))
    _assert_one_line_error(code, err, "name", "already exists")

    broken = tmp_path / "broken.yaml"
    broken.write_text("format: truenorth.goal-tree\nversion: 1\nproduct: {name: [x\ngoals: []\n")
    code, _, err = _run(capsys, *_as(owner, "import", str(broken)))
    _assert_one_line_error(code, err, "line 4")

    doc = json.loads(path.read_text())
    doc["goals"][0]["targets"][0]["target"] = 50  # below the baseline of an "increase" measure
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    code, _, err = _run(capsys, *_as(owner, "import", str(bad), "--name", "Never"))
    _assert_one_line_error(code, err, "goals[0].targets[0].target")

    code, _, err = _run(capsys, *_as(owner, "import", str(tmp_path / "missing.json")))
    _assert_one_line_error(code, err, "missing.json")
    assert list(Product.objects.values_list("name", flat=True)) == ["Trail"]
