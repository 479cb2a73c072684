"""Operation ids are public: splitting an app's API module into a package keeps the ids it published."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from truenorth.api import api
from truenorth.core.routers import keep_operation_ids


def test_operations_without_an_id_get_the_prefix_and_their_function_name() -> None:
    router = Router()

    @router.get("/a")
    def list_things(request: HttpRequest) -> None: ...

    @router.get("/b", operation_id="chosen")
    def get_thing(request: HttpRequest) -> None: ...

    keep_operation_ids(router, "truenorth_things_api_")
    ids = {op.view_func.__name__: op.operation_id for p in router.path_operations.values() for op in p.operations}
    assert ids == {"list_things": "truenorth_things_api_list_things", "get_thing": "chosen"}


def test_the_split_apis_publish_the_ids_they_had_as_one_module() -> None:
    ids = {
        operation["operationId"]
        for path in api.get_openapi_schema()["paths"].values()
        for operation in path.values()
    }
    assert {
        "truenorth_strategy_api_create_goal",  # strategy/api/ package
        "truenorth_hypotheses_api_list_hypotheses",  # hypotheses/api/hypotheses.py
        "truenorth_hypotheses_api_planning_power_calculator",  # hypotheses/api/planning.py
        "truenorth_engagement_api_mark_read",  # notifications/api.py, once engagement's
        "truenorth_measures_api_list_measures",
    } <= ids
