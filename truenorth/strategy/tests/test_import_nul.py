"""One validation path for goal-tree imports: the API and the CLI both refuse NUL characters (which
PostgreSQL cannot store) through ``exchange.import_tree``, with the same error naming the field's path."""

from __future__ import annotations

import json

import pytest

from truenorth import cli
from truenorth.core.errors import ValidationFailed
from truenorth.strategy import exchange, services
from truenorth.strategy.models import Goal, Product

BASE = "/api/v1/orgs/alpha"


def _document(owner) -> dict:
    product = services.create_product(owner.membership, owner.user, name="Trail", owner_id=owner.user.pk)
    root = services.create_goal(owner.membership, owner.user, title="Root", product_id=product.pk)
    services.create_goal(
        owner.membership, owner.user, title="Child", product_id=product.pk, parent_id=root.pk
    )
    doc = exchange.export_tree(owner.membership, product.pk)
    doc["goals"][0]["children"][0]["title"] = "Nul\u0000"
    return doc


@pytest.mark.django_db
def test_import_tree_refuses_nul_naming_the_path(owner):
    doc = _document(owner)
    with pytest.raises(ValidationFailed) as caught:
        exchange.import_tree(owner.membership, owner.user, doc, name="Copy")
    assert caught.value.errors == {"goals[0].children[0].title": "Must not contain NUL characters."}
    doc["goals"][0]["children"][0]["title"] = "Child"
    doc["goals"][0]["targets\u0000"] = []
    with pytest.raises(ValidationFailed) as caught:
        exchange.import_tree(owner.membership, owner.user, doc, name="Copy")
    assert caught.value.errors == {"goals[0]": "Must not contain NUL characters."}
    assert not Product.objects.filter(name="Copy").exists()


@pytest.mark.django_db
def test_cli_import_refuses_nul_like_the_api(capsys, tmp_path, owner, monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)
    doc = _document(owner)
    path = tmp_path / "nul.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    code = cli.main(["import", str(path), "--name", "Copy", "--org", "alpha", "--as", owner.user.email])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert "goals[0].children[0].title" in err
    assert "Must not contain NUL characters." in err

    api = owner.api().post(
        f"{BASE}/products/import?name=Copy", json.dumps(doc), content_type="application/json"
    )
    assert api.status_code == 422
    assert api.json()["errors"] == [
        {"field": "goals[0].children[0].title", "message": "Must not contain NUL characters."}
    ]
    assert not Product.objects.filter(name="Copy").exists()
    assert not Goal.objects.filter(title__startswith="Nul").exists()
