"""Every component of the OpenAPI document describes one schema class.

django-ninja (through pydantic) names a component after the class's `__name__` and merges the definitions of
all operations into one `components.schemas` mapping: when two different classes share a name, the later one
silently replaces the earlier, and the document then shows one operation the other's fields (our isolation
walk, which builds request bodies from the document, sent the wrong fields). This test builds the document
the way `/api/v1/openapi.json` does, records which class every component name was generated from (bodies,
responses, query and path parameter models and every model nested in them), and fails naming each
component that two or more classes claim, with their module paths.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import ninja.openapi.schema as ninja_openapi_schema
import pytest
from ninja.schema import NinjaGenerateJsonSchema

from truenorth.api import api

# component name -> {"module.QualName:id" core references of the classes generating it}
Claims = dict[str, set[str]]


def _recording_generator(claims: Claims) -> type[NinjaGenerateJsonSchema]:
    class Recording(NinjaGenerateJsonSchema):
        """Notes, for every definition emitted, the final ($defs) name and the class it comes from."""

        def _build_definitions_remapping(self) -> Any:
            remapping = super()._build_definitions_remapping()
            for defs_ref in self.definitions:
                name = remapping.defs_remapping.get(defs_ref, defs_ref)
                core_ref, _mode = self.defs_to_core_refs[defs_ref]
                claims[str(name)].add(str(core_ref))
            return remapping

    return Recording


def _openapi_claims(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Claims]:
    claims: Claims = defaultdict(set)
    monkeypatch.setattr(ninja_openapi_schema, "NinjaGenerateJsonSchema", _recording_generator(claims))
    document = dict(api.get_openapi_schema())
    return document, claims


def _class_path(core_ref: str) -> str:
    # pydantic's core reference is "module.QualName:id(cls)"; the id tells apart same-named classes.
    return core_ref.rsplit(":", 1)[0]


def test_every_component_comes_from_the_classes_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    document, claims = _openapi_claims(monkeypatch)
    components = set(document["components"]["schemas"])
    assert components, "the OpenAPI document has no components: the recording saw nothing"
    assert components == set(claims)
    # the recording sees real project classes, by module path
    assert any(_class_path(ref) == "truenorth.core.schemas.ErrorOut" for ref in claims["ErrorOut"])


def test_no_two_schema_classes_share_a_component_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _document, claims = _openapi_claims(monkeypatch)
    shared = {
        name: sorted(_class_path(ref) for ref in refs) for name, refs in claims.items() if len(refs) > 1
    }
    assert not shared, (
        "OpenAPI component names claimed by more than one schema class (one replaces the other in "
        "/api/v1/openapi.json; give each class a specific name):\n"
        + "\n".join(f"  {name}: {', '.join(paths)}" for name, paths in sorted(shared.items()))
    )


def test_the_check_catches_two_classes_of_one_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two throwaway classes named alike, one as a body and one as a response of a throwaway API: the
    # recording must report both under the one name (so the check above cannot pass vacuously).
    from ninja import NinjaAPI, Schema

    def make(field: str) -> type[Schema]:
        return type("Twin", (Schema,), {"__annotations__": {field: int}, "__module__": f"tests.twin_{field}"})

    twin_in, twin_out = make("a"), make("b")
    other = NinjaAPI(urls_namespace="openapi_names_twin")

    def twin(request: Any, payload: Any) -> Any:
        return {"b": 1}

    # this module's annotations are strings; give ninja the classes themselves
    twin.__annotations__ = {"request": Any, "payload": twin_in, "return": Any}
    other.post("/twin", response=twin_out)(twin)

    claims: Claims = defaultdict(set)
    monkeypatch.setattr(ninja_openapi_schema, "NinjaGenerateJsonSchema", _recording_generator(claims))
    other.get_openapi_schema(path_prefix="")
    assert sorted(_class_path(ref) for ref in claims["Twin"]) == ["tests.twin_a.Twin", "tests.twin_b.Twin"]
