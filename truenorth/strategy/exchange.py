"""Goal trees in and out: a self-describing JSON/YAML document (the Markdown archive is in markdown.py).

Export writes a product and its whole goal tree (archived goals included, so nothing is lost) with
stable local keys ("g1", "g2", …) instead of database ids. Import validates a document, naming the
path of the first problem (e.g. ``goals[2].children[0].targets[0].baseline``), and creates a new
product through the services (so their validation, history and cycle rules apply) in one transaction:
a bad document creates nothing. export → dump → load → import → export gives the same document apart
from the product name.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import ValidationFailed
from truenorth.orgs.models import Membership
from truenorth.strategy import services, value_port
from truenorth.strategy.markdown import to_markdown as to_markdown  # the Markdown archive
from truenorth.strategy.models import Goal, GoalLink, Product, TargetMeasure, TargetObservation, Team

FORMAT = "truenorth.goal-tree"
VERSION = 1
FORMATS = ("json", "yaml")
MAX_DEPTH = 100  # goals nested deeper than this are refused (a real tree has four or five levels)
MAX_DOCUMENT_NODES = 500_000  # values in a document (YAML aliases could multiply a small text)

TOP_FIELDS = ("format", "version", "product", "goals")
PRODUCT_KEYS = ("name", "vision", "product_goal", "owner", "teams")
GOAL_KEYS = (
    "key",
    "title",
    "outcome",
    "level",
    "status",
    "owner",
    "target_date",
    "weight",
    "checkin_cadence_days",
    "archived",
    "targets",
    "links",
    "children",
)
TARGET_KEYS = ("name", "unit", "baseline", "target", "direction", "measure", "observations")
MEASURE_REF_KEYS = ("name", "product")
OBSERVATION_KEYS = ("value", "observed_at", "note")
LINK_KEYS = ("kind", "target")
EXTERNAL_KEYS = ("external", "product")


# --- export ---------------------------------------------------------------------------------------


def export_tree(membership: Membership, product_id: int) -> dict[str, Any]:
    """The product and every goal of its tree (archived ones too) as a self-describing document."""
    product = services.get_product(membership, product_id)
    observations = TargetObservation.objects.order_by("observed_at", "id")
    targets = (
        TargetMeasure.objects.order_by("position", "id")
        .select_related("measure__product")
        .prefetch_related(Prefetch("observations", queryset=observations))
    )
    goals = list(
        Goal.objects.filter(organisation_id=membership.organisation_id, product=product)
        .select_related("owner")
        .prefetch_related(Prefetch("targets", queryset=targets))
        .order_by("position", "id")
    )
    ids = {g.pk for g in goals}
    children: dict[int | None, list[Goal]] = defaultdict(list)
    for g in goals:
        children[g.parent_id if g.parent_id in ids else None].append(g)
    keys: dict[int, str] = {}
    for g in _depth_first(children):
        keys[g.pk] = f"g{len(keys) + 1}"
    links: dict[int, list[GoalLink]] = defaultdict(list)
    for link in (
        GoalLink.objects.filter(organisation_id=membership.organisation_id, source_id__in=ids)
        .select_related("target__product")
        .order_by("id")
    ):
        links[link.source_id].append(link)

    def link_doc(link: GoalLink) -> dict[str, Any]:
        if link.target_id in keys:
            return {"kind": link.kind, "target": keys[link.target_id]}
        target = link.target
        return {
            "kind": link.kind,
            "target": {"external": target.title, "product": target.product.name if target.product else None},
        }

    def goal_doc(g: Goal) -> dict[str, Any]:
        return {
            "key": keys[g.pk],
            "title": g.title,
            "outcome": g.outcome,
            "level": g.level,
            "status": g.status,
            "owner": g.owner.email if g.owner else None,
            "target_date": g.target_date.isoformat() if g.target_date else None,
            "weight": float(g.weight),
            "checkin_cadence_days": int(g.checkin_cadence_days),
            "archived": g.archived_at is not None,
            "targets": [
                {
                    "name": t.name,
                    "unit": t.unit,
                    "baseline": float(t.baseline),
                    "target": float(t.target),
                    "direction": t.direction,
                    "measure": _measure_ref(t),
                    "observations": [
                        {"value": float(o.value), "observed_at": o.observed_at.isoformat(), "note": o.note}
                        for o in t.observations.all()
                    ],
                }
                for t in g.targets.all()
            ],
            "links": [link_doc(link) for link in links[g.pk]],
            "children": [goal_doc(c) for c in children[g.pk]],
        }

    return {
        "format": FORMAT,
        "version": VERSION,
        "product": {
            "name": product.name,
            "vision": product.vision,
            "product_goal": product.product_goal,
            "owner": product.owner.email if product.owner else None,
            "teams": [t.name for t in product.teams.order_by("name", "id")],
        },
        "goals": [goal_doc(g) for g in children[None]],
    }


def _measure_ref(t: TargetMeasure) -> dict[str, Any] | None:
    """The Value measure a target tracks, by a reference that holds across instances: its name and its
    product's name (null: an organisation-wide measure), both unique in an organisation."""
    m = t.measure
    if m is None:
        return None
    return {"name": m.name, "product": m.product.name if m.product else None}


def _depth_first(children: Mapping[int | None, list[Goal]]) -> Iterator[Goal]:
    stack = list(reversed(children.get(None, [])))
    while stack:
        goal = stack.pop()
        yield goal
        stack.extend(reversed(children.get(goal.pk, [])))


# --- text formats ---------------------------------------------------------------------------------


def dump(data: dict[str, Any], fmt: str) -> str:
    """The document as JSON or YAML text."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    raise ValidationFailed(f"Unknown format '{fmt}'; use json or yaml.", field="format")


def load(text: str, fmt: str) -> dict[str, Any]:
    """Parse JSON or YAML text into a document; malformed text names the line."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"Malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.", field="document"
            ) from None
        except RecursionError:
            raise ValidationFailed("The JSON is nested too deeply.", field="document") from None
    elif fmt == "yaml":
        loader = _NoAliasLoader(text)
        try:
            data = loader.get_single_data()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ValidationFailed(f"Malformed YAML{where}: {problem}.", field="document") from None
        except RecursionError:
            raise ValidationFailed("The YAML is nested too deeply.", field="document") from None
        finally:
            loader.dispose()
    else:
        raise ValidationFailed(f"Unknown format '{fmt}'; use json or yaml.", field="format")
    if not isinstance(data, dict):
        raise ValidationFailed(
            f"The document must be a mapping with {', '.join(TOP_FIELDS)}; got {_kind(data)}.",
            field="document",
        )
    return data


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases (*name): they could make a small file expand to a huge tree."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a goal tree", event.start_mark
            )
        return super().compose_node(parent, index)


# --- import: reading the document -----------------------------------------------------------------


@dataclass
class _Observation:
    path: str
    value: float
    observed_at: dt.datetime
    note: str


@dataclass
class _Target:
    path: str
    spec: dict[str, Any]
    observations: list[_Observation]
    measure: tuple[str, str | None] | None = None  # (name, product name or None) of a tracked measure


@dataclass
class _Link:
    path: str
    kind: str
    key: str | None = None
    external: str | None = None
    external_product: str | None = None


@dataclass
class _Goal:
    path: str
    key: str
    fields: dict[str, Any]
    owner: str | None
    archived: bool
    targets: list[_Target] = field(default_factory=list)
    links: list[_Link] = field(default_factory=list)
    children: list[_Goal] = field(default_factory=list)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _fail(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, field=path)


def _mapping(value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"Expected a mapping, got {_kind(value)}.")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", f"Unknown field (allowed: {', '.join(allowed)}).")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(path, f"Expected a list, got {_kind(value)}.")
    return value


def _string(value: Any, path: str, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _fail(path, f"Expected text, got {_kind(value)}.")
    if required and not value.strip():
        raise _fail(path, "Required.")
    return value


def _optional_string(value: Any, path: str) -> str | None:
    return _string(value, path) or None


def _number(value: Any, path: str, *, required: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(
            path, "Required." if value is None and required else f"Expected a number, got {_kind(value)}."
        )
    return float(value)


def _date_text(value: Any, path: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise _fail(path, f"'{value}' is not a date (use YYYY-MM-DD).")


def _datetime(value: Any, path: str) -> dt.datetime:
    when: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime.combine(value, dt.time())
    elif isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            when = None
    if when is None:
        raise _fail(path, f"'{value}' is not a date and time (use ISO 8601, e.g. 2025-03-01T09:30:00+00:00).")
    if timezone.is_naive(when):
        when = timezone.make_aware(when, dt.UTC)
    return when


def refuse_nul(value: Any, path: str = "") -> None:
    """PostgreSQL cannot store NUL characters: refuse a document holding any, naming where.

    Every import (API and CLI) runs it through :func:`import_tree`, before the document is read."""
    stack = [(value, path)]
    seen = 0
    while stack:
        item, where = stack.pop()
        seen += 1
        if seen > MAX_DOCUMENT_NODES:  # e.g. YAML aliases that multiply a small text
            raise ValidationFailed("The document is too large to import.", field="document")
        if isinstance(item, str) and "\x00" in item:
            raise ValidationFailed("Must not contain NUL characters.", field=where)
        if isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str) and "\x00" in key:
                    raise ValidationFailed("Must not contain NUL characters.", field=where or "document")
                stack.append((sub, f"{where}.{key}" if where else str(key)))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{i}]") for i, sub in enumerate(item))


def _read_document(data: Any) -> tuple[dict[str, Any], list[_Goal]]:
    doc = _mapping(data, "document", TOP_FIELDS)
    if doc.get("format") != FORMAT:
        raise _fail("format", f"Expected '{FORMAT}', got {doc.get('format')!r}.")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise _fail("version", f"This TrueNorth reads version {VERSION}, got {doc.get('version')!r}.")
    raw_product = _mapping(doc.get("product"), "product", PRODUCT_KEYS)
    product = {
        "name": _string(raw_product.get("name"), "product.name"),
        "vision": _string(raw_product.get("vision"), "product.vision"),
        "product_goal": _string(raw_product.get("product_goal"), "product.product_goal"),
        "owner": _optional_string(raw_product.get("owner"), "product.owner"),
        "teams": [
            _string(t, f"product.teams[{i}]", required=True)
            for i, t in enumerate(_list(raw_product.get("teams"), "product.teams"))
        ],
    }
    keys: set[str] = set()
    goals = [_read_goal(g, f"goals[{i}]", keys, 1) for i, g in enumerate(_list(doc.get("goals"), "goals"))]
    for goal in _walk(goals):
        for link in goal.links:
            if link.key is not None and link.key not in keys:
                raise _fail(f"{link.path}.target", f"No goal with the key '{link.key}' in this document.")
    return product, goals


def _read_goal(data: Any, path: str, keys: set[str], depth: int) -> _Goal:
    if depth > MAX_DEPTH:
        raise _fail(path, f"Goals are nested more than {MAX_DEPTH} levels deep.")
    raw = _mapping(data, path, GOAL_KEYS)
    key = raw.get("key")
    if not isinstance(key, str) or not key.strip():
        raise _fail(f"{path}.key", "Required (a local reference such as 'g1').")
    if key in keys:
        raise _fail(f"{path}.key", f"The key '{key}' is used by another goal in this document.")
    keys.add(key)
    archived = raw.get("archived", False)
    if not isinstance(archived, bool):
        raise _fail(f"{path}.archived", f"Expected true or false, got {_kind(archived)}.")
    fields: dict[str, Any] = {
        "title": _string(raw.get("title"), f"{path}.title", required=True),
        "outcome": _string(raw.get("outcome"), f"{path}.outcome"),
        "target_date": _date_text(raw.get("target_date"), f"{path}.target_date"),
    }
    for name in ("level", "status"):
        if raw.get(name) is not None:
            fields[name] = _string(raw[name], f"{path}.{name}")
    if raw.get("weight") is not None:
        fields["weight"] = _number(raw["weight"], f"{path}.weight")
    if raw.get("checkin_cadence_days") is not None:
        cadence = raw["checkin_cadence_days"]
        if isinstance(cadence, bool) or not isinstance(cadence, int):
            raise _fail(f"{path}.checkin_cadence_days", f"Expected a whole number, got {_kind(cadence)}.")
        fields["checkin_cadence_days"] = cadence
    goal = _Goal(
        path=path,
        key=key,
        fields=fields,
        owner=_optional_string(raw.get("owner"), f"{path}.owner"),
        archived=archived,
    )
    for i, t in enumerate(_list(raw.get("targets"), f"{path}.targets")):
        goal.targets.append(_read_target(t, f"{path}.targets[{i}]"))
    for i, link in enumerate(_list(raw.get("links"), f"{path}.links")):
        goal.links.append(_read_link(link, f"{path}.links[{i}]"))
    for i, child in enumerate(_list(raw.get("children"), f"{path}.children")):
        goal.children.append(_read_goal(child, f"{path}.children[{i}]", keys, depth + 1))
    return goal


def _read_target(data: Any, path: str) -> _Target:
    raw = _mapping(data, path, TARGET_KEYS)
    spec = {
        "name": _string(raw.get("name"), f"{path}.name", required=True),
        "unit": _string(raw.get("unit"), f"{path}.unit"),
        "baseline": _number(raw.get("baseline"), f"{path}.baseline"),
        "target": _number(raw.get("target"), f"{path}.target"),
        "direction": _string(raw.get("direction"), f"{path}.direction") or TargetMeasure.Direction.INCREASE,
    }
    measure = None
    if raw.get("measure") is not None:
        ref = _mapping(raw.get("measure"), f"{path}.measure", MEASURE_REF_KEYS)
        measure = (
            _string(ref.get("name"), f"{path}.measure.name", required=True),
            _optional_string(ref.get("product"), f"{path}.measure.product"),
        )
    observations = []
    for i, o in enumerate(_list(raw.get("observations"), f"{path}.observations")):
        opath = f"{path}.observations[{i}]"
        obs = _mapping(o, opath, OBSERVATION_KEYS)
        observations.append(
            _Observation(
                path=opath,
                value=_number(obs.get("value"), f"{opath}.value"),
                observed_at=_datetime(obs.get("observed_at"), f"{opath}.observed_at"),
                note=_string(obs.get("note"), f"{opath}.note"),
            )
        )
    return _Target(path=path, spec=spec, observations=observations, measure=measure)


def _read_link(data: Any, path: str) -> _Link:
    raw = _mapping(data, path, LINK_KEYS)
    kind = _string(raw.get("kind"), f"{path}.kind", required=True)
    target = raw.get("target")
    if isinstance(target, str) and target.strip():
        return _Link(path=path, kind=kind, key=target)
    if isinstance(target, dict):
        external = _mapping(target, f"{path}.target", EXTERNAL_KEYS)
        return _Link(
            path=path,
            kind=kind,
            external=_string(external.get("external"), f"{path}.target.external", required=True),
            external_product=_optional_string(external.get("product"), f"{path}.target.product"),
        )
    raise _fail(
        f"{path}.target",
        f"Expected a goal key of this document or {{external: title, product: name}}, got {_kind(target)}.",
    )


def _walk(goals: list[_Goal]) -> Iterator[_Goal]:
    """Every goal in document order (depth first)."""
    for goal in goals:
        yield goal
        yield from _walk(goal.children)


def _post_order(goals: list[_Goal]) -> Iterator[_Goal]:
    for goal in goals:
        yield from _post_order(goal.children)
        yield goal


# --- import: creating through the services --------------------------------------------------------


def _service_path(path: str, service_field: str | None) -> str:
    """A service's field name ("owner", "targets.0.target") as a path in the document."""
    if not service_field:
        return path
    parts = service_field.split(".")
    if len(parts) == 3 and parts[0] == "targets":
        return f"{path}.targets[{parts[1]}].{parts[2]}"
    return f"{path}.{service_field}"


@contextmanager
def _at(path: str, rename: Callable[[str | None], str] | None = None) -> Iterator[None]:
    """Re-raise a service's ValidationFailed with the field as a path in the document."""
    try:
        yield
    except ValidationFailed as exc:
        where = rename(exc.field) if rename else _service_path(path, exc.field)
        raise ValidationFailed(exc.message, field=where) from None


def _exactly(path: str) -> Callable[[str | None], str]:
    return lambda _: path


def _owner_id(membership: Membership, email: str | None, path: str) -> int | None:
    if email is None:
        return None
    with _at(path, _exactly(path)):
        return services.member_by_email(membership, email, field=path).pk


def _team_ids(membership: Membership, actor: User, names: list[str]) -> list[int]:
    ids = []
    for i, name in enumerate(names):
        team = Team.objects.filter(
            organisation_id=membership.organisation_id, name__iexact=name.strip()
        ).first()
        if team is None:
            with _at(f"product.teams[{i}]", _exactly(f"product.teams[{i}]")):
                team = services.create_team(membership, actor, name)
        ids.append(team.pk)
    return ids


def _tracked_measure_id(membership: Membership, target: _Target) -> int | None:
    """The id of the measure a target's `measure` reference names in this organisation (an error naming
    the reference's path when there is none)."""
    if target.measure is None:
        return None
    name, product = target.measure
    found = value_port.port().measure_id_named(membership.organisation_id, name, product)
    if found is None:
        where = f"of the product “{product}”" if product else "organisation-wide"
        raise _fail(f"{target.path}.measure", f"No measure named “{name}” {where} in this organisation.")
    return found


def _external_goal(membership: Membership, link: _Link, exclude_product: Product) -> Goal:
    qs = Goal.objects.filter(organisation_id=membership.organisation_id, title=link.external).exclude(
        product=exclude_product
    )
    if link.external_product is None:
        qs = qs.filter(product__isnull=True)
    else:
        qs = qs.filter(product__name=link.external_product)
    found = list(qs.order_by("id")[:2])
    where = f" in {link.external_product}" if link.external_product else " at organisation level"
    if not found:
        raise _fail(f"{link.path}.target", f"No goal titled “{link.external}”{where} in this organisation.")
    if len(found) > 1:
        raise _fail(
            f"{link.path}.target", f"More than one goal is titled “{link.external}”{where}; rename one first."
        )
    return found[0]


@transaction.atomic
def import_tree(
    membership: Membership, actor: User, data: dict[str, Any], *, name: str | None = None
) -> Product:
    """Create a new product with the document's whole goal tree; a bad document creates nothing."""
    services.require_writer(membership)
    refuse_nul(data)
    product_doc, goals = _read_document(data)
    product_name = name if name is not None else product_doc["name"]
    owner_id = _owner_id(membership, product_doc["owner"], "product.owner")
    team_ids = _team_ids(membership, actor, product_doc["teams"])
    with _at(
        "product", lambda f: "name" if f == "name" and name is not None else _service_path("product", f)
    ):
        product = services.create_product(
            membership,
            actor,
            name=product_name,
            vision=product_doc["vision"],
            product_goal=product_doc["product_goal"],
            owner_id=owner_id,
            team_ids=team_ids,
        )

    created: dict[str, Goal] = {}
    tracked = {t.path: _tracked_measure_id(membership, t) for g in _walk(goals) for t in g.targets}

    def create(goal: _Goal, parent: Goal | None) -> None:
        owner_id = _owner_id(membership, goal.owner, f"{goal.path}.owner")
        with _at(goal.path):
            created[goal.key] = services.create_goal(
                membership,
                actor,
                product_id=product.pk,
                parent_id=parent.pk if parent else None,
                owner_id=owner_id,
                targets=[t.spec for t in goal.targets],
                **goal.fields,
            )
        measures = list(created[goal.key].targets.order_by("position", "id"))
        for target, measure in zip(goal.targets, measures, strict=True):
            for obs in target.observations:
                with _at(obs.path):
                    services.record_observation(
                        membership, actor, measure.pk, obs.value, observed_at=obs.observed_at, note=obs.note
                    )
            # Linked after its own values are kept (a linked target takes values from its measure only).
            if tracked[target.path] is not None:
                with _at(target.path, _exactly(f"{target.path}.measure")):
                    services.update_target(
                        membership, actor, measure.pk, {"measure_id": tracked[target.path]}
                    )
        for child in goal.children:
            create(child, created[goal.key])

    for goal in goals:
        create(goal, None)
    for goal in _walk(goals):
        for link in goal.links:
            target = created[link.key] if link.key is not None else _external_goal(membership, link, product)
            with _at(link.path):
                services.link_goals(membership, actor, created[goal.key].pk, target.pk, link.kind)
    for goal in _post_order(goals):
        if goal.archived:
            _archive(membership, actor, created[goal.key], goal, created)
    return product


def _archive(
    membership: Membership, actor: User, target: Goal, goal: _Goal, created: Mapping[str, Goal]
) -> None:
    """Archive a goal after its children; a live child of an archived goal (a restored child) stays live."""
    live = [created[c.key] for c in goal.children if not c.archived]
    with _at(f"{goal.path}.archived", _exactly(f"{goal.path}.archived")):
        for child in live:
            services.archive_goal(membership, actor, child.pk)
        services.archive_goal(membership, actor, target.pk)
        for child in live:
            services.archive_goal(membership, actor, child.pk, archived=False)
