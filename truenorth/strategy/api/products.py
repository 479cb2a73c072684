"""Vision API: teams and products (list, create, change, archive and restore); a product's goal tree,
lint findings and orphan work; export and import of a product's goal tree."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import Query, Status

from truenorth.core.errors import ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId
from truenorth.orgs.scoping import scope
from truenorth.strategy import services
from truenorth.strategy.api.common import findings_out, owner_from, product_detail, product_out, router, tree
from truenorth.strategy.models import Team
from truenorth.strategy.schemas import (
    ExportFilter,
    FindingOut,
    ImportFilter,
    OrphanReportOut,
    ProductDetailOut,
    ProductFilter,
    ProductIn,
    ProductOut,
    ProductPatch,
    TeamIn,
    TeamOut,
    TreeOut,
    VersionQuery,
)


@router.get("/{slug}/teams", response={200: list[TeamOut], **READ_ERRORS}, summary="List teams")
def list_teams(request: HttpRequest, slug: str) -> list[Team]:
    m, _ = scope(request, slug)
    return list(services.teams_of(m))


@router.post("/{slug}/teams", response={201: TeamOut, **ERRORS}, summary="Create a team")
def create_team(request: HttpRequest, slug: str, payload: TeamIn) -> Status[Team]:
    m, user = scope(request, slug)
    return Status(201, services.create_team(m, user, payload.name))


# --- products -------------------------------------------------------------------------------------


@router.get("/{slug}/products", response={200: list[ProductOut], **READ_ERRORS}, summary="List products")
def list_products(request: HttpRequest, slug: str, filters: Query[ProductFilter]) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    counts = services.product_counts(m)
    return [
        product_out(p, counts.get(p.pk))
        for p in services.products_of(m, include_archived=filters.include_archived)
    ]


@router.post("/{slug}/products", response={201: ProductDetailOut, **ERRORS}, summary="Create a product")
def create_product(request: HttpRequest, slug: str, payload: ProductIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    services.require_writer(m)
    product = services.create_product(
        m,
        user,
        name=payload.name,
        vision=payload.vision,
        product_goal=payload.product_goal,
        owner_id=owner_from(m, payload.owner, payload.owner_email),
        team_ids=payload.teams,
    )
    return Status(201, product_detail(m, product.pk))


@router.post(
    "/{slug}/products/import",
    response={201: ProductDetailOut, **ERRORS},
    summary="Import a product tree (JSON or YAML) as a new product",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "An export of a product tree: `application/json`, or YAML text "
            "(`application/yaml`, `text/yaml` or `text/plain`).",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
def import_product(request: HttpRequest, slug: str, filters: Query[ImportFilter]) -> Status[dict[str, Any]]:
    from truenorth.strategy import exchange

    m, user = scope(request, slug)
    services.require_writer(m)
    content_type = (request.content_type or "").lower()
    if content_type == "application/json":
        fmt = "json"
    elif content_type in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"):
        fmt = "yaml"
    else:
        raise ValidationFailed(
            "Send the tree as application/json or as YAML (application/yaml).", field="content_type"
        )
    try:
        text = request.body.decode("utf-8")
    except RequestDataTooBig:
        raise ValidationFailed("The import is too large.", field="body") from None
    except UnicodeDecodeError:
        raise ValidationFailed("The import must be UTF-8 text.", field="body") from None
    data = exchange.load(text, fmt)
    product = exchange.import_tree(m, user, data, name=filters.name)
    return Status(201, product_detail(m, product.pk))


@router.get(
    "/{slug}/products/{product_id}",
    response={200: ProductDetailOut, **READ_ERRORS},
    summary="Get a product with its counts",
)
def get_product(request: HttpRequest, slug: str, product_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return product_detail(m, product_id)


@router.patch(
    "/{slug}/products/{product_id}", response={200: ProductDetailOut, **ERRORS}, summary="Change a product"
)
def update_product(
    request: HttpRequest, slug: str, product_id: ObjectId, payload: ProductPatch
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.get_product(m, product_id)  # an unknown product is a 404 before any field is looked at
    services.require_writer(m)
    given = payload.model_fields_set
    for name in ("name", "vision", "product_goal", "teams"):
        if name in given and getattr(payload, name) is None:
            raise ValidationFailed("Must not be null.", field=name)
    owner_id = owner_from(m, payload.owner, payload.owner_email)
    clear_owner = "owner" in given and payload.owner is None and not payload.owner_email
    services.update_product(
        m,
        user,
        product_id,
        version=payload.version,
        name=payload.name,
        vision=payload.vision,
        product_goal=payload.product_goal,
        owner_id=owner_id,
        clear_owner=clear_owner,
        team_ids=payload.teams,
    )
    return product_detail(m, product_id)


@router.post(
    "/{slug}/products/{product_id}/archive",
    response={200: ProductDetailOut, **ERRORS},
    summary="Archive a product",
)
def archive_product(
    request: HttpRequest, slug: str, product_id: ObjectId, filters: Query[VersionQuery]
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.archive_product(m, user, product_id, archived=True, version=filters.version)
    return product_detail(m, product_id)


@router.post(
    "/{slug}/products/{product_id}/restore",
    response={200: ProductDetailOut, **ERRORS},
    summary="Restore an archived product",
)
def restore_product(
    request: HttpRequest, slug: str, product_id: ObjectId, filters: Query[VersionQuery]
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.archive_product(m, user, product_id, archived=False, version=filters.version)
    return product_detail(m, product_id)


@router.get(
    "/{slug}/products/{product_id}/tree",
    response={200: TreeOut, **READ_ERRORS},
    summary="A product's goal tree, nested, with progress",
)
def product_tree(request: HttpRequest, slug: str, product_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    product = services.get_product(m, product_id)
    return {"product": product, "goals": tree(m, product.pk)}


@router.get(
    "/{slug}/products/{product_id}/lint",
    response={200: list[FindingOut], **READ_ERRORS},
    summary="Lint findings over a product's goals",
)
def product_lint(request: HttpRequest, slug: str, product_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    product = services.get_product(m, product_id)
    return findings_out(services.lint(m, product_id=product.pk))


@router.get(
    "/{slug}/products/{product_id}/orphans",
    response={200: OrphanReportOut, **READ_ERRORS},
    summary="Line of sight: how much of a product's work serves no goal",
)
def orphan_report(request: HttpRequest, slug: str, product_id: ObjectId) -> services.OrphanReport:
    m, _ = scope(request, slug)
    return services.orphan_report(m, product_id)


@router.get(
    "/{slug}/products/{product_id}/export",
    response={200: dict[str, Any], **READ_ERRORS},
    summary="Export a product's goal tree as JSON, YAML or Markdown",
    openapi_extra={
        "responses": {
            "200": {
                "description": "JSON by default; `?format=yaml` answers application/yaml text and "
                "`?format=markdown` text/markdown.",
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/yaml": {"schema": {"type": "string"}},
                    "text/markdown": {"schema": {"type": "string"}},
                },
            }
        }
    },
)
def export_product(
    request: HttpRequest, slug: str, product_id: ObjectId, filters: Query[ExportFilter]
) -> dict[str, Any] | HttpResponse:
    from truenorth.strategy import exchange

    m, _ = scope(request, slug)
    if filters.format == "markdown":
        return HttpResponse(exchange.to_markdown(m, product_id), content_type="text/markdown; charset=utf-8")
    data = exchange.export_tree(m, product_id)
    if filters.format == "yaml":
        return HttpResponse(exchange.dump(data, "yaml"), content_type="application/yaml; charset=utf-8")
    return data
