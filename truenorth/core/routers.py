"""Helpers for the apps' django-ninja routers."""

from __future__ import annotations

from ninja import Router


def keep_operation_ids(router: Router, prefix: str) -> None:
    """Give each operation of `router` without an explicit id the id `prefix + function name`.

    django-ninja derives an operation id from the view's module, so moving endpoints into a package
    would rename them; operation ids are public (generated clients use them), so an app that splits its
    API module keeps the ids it published (`truenorth_<app>_api_<function>`)."""
    for path in router.path_operations.values():
        for operation in path.operations:
            operation.operation_id = operation.operation_id or prefix + operation.view_func.__name__
