"""A product as a readable Markdown archive: vision, goal tree with progress, targets, recent check-ins,
accepted proposals, open concerns and lint findings (``truenorth export --format markdown`` and the API's
``?format=markdown``). The JSON/YAML exchange that can be imported again is in exchange.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.orgs.models import Membership
from truenorth.strategy import services
from truenorth.strategy.models import ChangeProposal, CheckIn, Endorsement, Goal, GoalLink, TargetMeasure


def _fmt(value: float) -> str:
    return f"{value:g}"


def _percent(value: float | None) -> str:
    return "unknown" if value is None else f"{round(value * 100)} %"


def to_markdown(membership: Membership, product_id: int, *, recent_checkins: int = 3) -> str:
    """A readable archive of a product: vision, goal tree with progress, targets, check-ins,
    accepted proposals, open concerns and lint findings."""
    product = services.get_product(membership, product_id)
    goals = list(
        Goal.objects.filter(organisation_id=membership.organisation_id, product=product)
        .select_related("owner")
        .prefetch_related(
            Prefetch("targets", queryset=TargetMeasure.objects.order_by("position", "id")),
            Prefetch(
                "checkins", queryset=CheckIn.objects.select_related("author").order_by("-created_at", "-id")
            ),
            Prefetch(
                "proposals",
                queryset=ChangeProposal.objects.filter(state=ChangeProposal.State.ACCEPTED)
                .select_related("author", "decided_by")
                .order_by("decided_at", "id"),
            ),
            Prefetch(
                "endorsements",
                queryset=Endorsement.objects.select_related("user").order_by("created_at", "id"),
            ),
        )
        .order_by("position", "id")
    )
    ids = {g.pk for g in goals}
    children: dict[int | None, list[Goal]] = defaultdict(list)
    for g in goals:
        children[g.parent_id if g.parent_id in ids else None].append(g)
    progress = services.progress_for_org(membership.organisation_id)
    latest = services.latest_values(t.pk for g in goals for t in g.targets.all())
    findings: dict[int, list[str]] = defaultdict(list)
    for goal, finding in services.lint(membership, product_id=product.pk):
        findings[goal.pk].append(f"{finding.severity} `{finding.rule}`: {finding.message}")
    links = defaultdict(list)
    for link in GoalLink.objects.filter(
        organisation_id=membership.organisation_id, source_id__in=ids
    ).select_related("target__product"):
        where = link.target.product.name if link.target.product else "organisation"
        links[link.source_id].append(f"{link.get_kind_display()} “{link.target.title}” ({where})")

    out = [f"# {product.name}", ""]
    if product.archived_at:
        out += [f"*Archived on {product.archived_at:%Y-%m-%d}.*", ""]
    out += [
        f"- **Vision:** {product.vision or '—'}",
        f"- **Product goal:** {product.product_goal or '—'}",
        f"- **Owner:** {_person(product.owner)}",
        f"- **Teams:** {', '.join(t.name for t in product.teams.order_by('name')) or '—'}",
        f"- **Exported:** {timezone.now():%Y-%m-%d %H:%M} UTC",
        "",
        "## Goal tree",
        "",
    ]
    if not goals:
        out += ["No goals yet.", ""]
    stack: list[tuple[Goal, int]] = [(g, 0) for g in reversed(children[None])]
    while stack:
        goal, depth = stack.pop()
        out += _goal_markdown(goal, depth, progress, latest, findings, links[goal.pk], recent_checkins)
        stack.extend((c, depth + 1) for c in reversed(children[goal.pk]))
    total = sum(len(f) for f in findings.values())
    out += ["## Lint summary", ""]
    out += [f"{total} finding{'s' if total != 1 else ''} on live goals." if total else "No findings.", ""]
    return "\n".join(out).rstrip() + "\n"


def _person(user: User | None) -> str:
    if user is None:
        return "—"
    return f"{user.display_name} <{user.email}>" if user.display_name != user.email else user.email


def _goal_markdown(
    goal: Goal,
    depth: int,
    progress: Mapping[int, Any],
    latest: Mapping[int, float],
    findings: Mapping[int, list[str]],
    links: list[str],
    recent_checkins: int,
) -> list[str]:
    hashes = "#" * min(6, depth + 3)
    archived = " (archived)" if goal.archived_at else ""
    p = progress.get(goal.pk)
    out = [
        f"{hashes} {goal.title}{archived}",
        "",
        f"- **Level:** {goal.get_level_display()} · **Status:** {goal.get_status_display()}"
        f" · **Progress:** {_percent(p.value if p else None)}",
        f"- **Owner:** {_person(goal.owner)} · **Target date:** "
        f"{goal.target_date.isoformat() if goal.target_date else '—'}",
        f"- **Outcome:** {goal.outcome or '—'}",
    ]
    targets = list(goal.targets.all())
    if targets:
        out.append("- **Targets:**")
        for t in targets:
            unit = f" {t.unit}" if t.unit else ""
            now = latest.get(t.pk)
            current = f"latest {_fmt(now)}{unit}" if now is not None else "no observation yet"
            share = _percent(services.target_progress_of(t, now))
            out.append(
                f"  - {t.name}: {_fmt(t.baseline)} → {_fmt(t.target)}{unit} ({t.get_direction_display().lower()});"
                f" {current} ({share})"
            )
    if links:
        out.append("- **Links:** " + "; ".join(links))
    checkins = list(goal.checkins.all())[:recent_checkins]
    if checkins:
        out.append("- **Recent check-ins:**")
        for c in checkins:
            narrative = f": {c.narrative}" if c.narrative else ""
            out.append(
                f"  - {c.created_at:%Y-%m-%d} {c.get_status_display()}, confidence {c.confidence}/10"
                f" ({_person(c.author)}){narrative}"
            )
    accepted = list(goal.proposals.all())
    if accepted:
        out.append("- **Accepted proposals:**")
        for proposal in accepted:
            when = f"{proposal.decided_at:%Y-%m-%d}" if proposal.decided_at else ""
            reason = f" — {proposal.reason}" if proposal.reason else ""
            out.append(f"  - {when} by {_person(proposal.author)}: {_changes_text(proposal.changes)}{reason}")
    concerns = [
        e for e in goal.endorsements.all() if e.kind == Endorsement.Kind.CONCERN and e.resolved_at is None
    ]
    endorsed = [
        e for e in goal.endorsements.all() if e.kind == Endorsement.Kind.ENDORSE and e.resolved_at is None
    ]
    if endorsed:
        out.append(f"- **Endorsed by:** {', '.join(e.user.email for e in endorsed)}")
    if concerns:
        out.append("- **Open concerns:**")
        out += [f"  - {_person(e.user)}: {e.note}" for e in concerns]
    if findings.get(goal.pk):
        out.append("- **Lint:**")
        out += [f"  - {f}" for f in findings[goal.pk]]
    out.append("")
    return out


def _changes_text(changes: Mapping[str, Any]) -> str:
    parts = []
    for key, value in changes.items():
        if key == "targets" and isinstance(value, Mapping):
            parts += [f"target #{tid} → {spec.get('target')}" for tid, spec in value.items()]
        else:
            parts.append(f"{key.replace('_', ' ')} → “{value}”")
    return "; ".join(parts)
