"""The Evidence-Based Management example Key Value Measures, as data (seeded for every organisation).

Each entry: a stable key, a name, its Key Value Area, how it is measured, a suggested unit and whether
higher or lower is better. Organisations may edit their copy; products adopt measures from it.
"""

from __future__ import annotations

from dataclasses import dataclass

CV = "current_value"
UV = "unrealized_value"
T2M = "time_to_market"
A2I = "ability_to_innovate"


@dataclass(frozen=True)
class CatalogueEntry:
    key: str
    name: str
    kva: str
    description: str
    unit: str
    direction: str  # "higher" | "lower" (which is better)


CATALOGUE: tuple[CatalogueEntry, ...] = (
    # --- Current Value: how much value does the product deliver today? ---
    CatalogueEntry(
        "revenue-per-employee",
        "Revenue per employee",
        CV,
        "Gross revenue of the period divided by the number of employees (full-time equivalents) who "
        "work on the product. Shows how well the product turns effort into income.",
        "€/FTE",
        "higher",
    ),
    CatalogueEntry(
        "product-cost-ratio",
        "Product cost ratio",
        CV,
        "All costs of building, running and supporting the product in the period divided by the revenue "
        "it earned in that period. Below 1 the product pays for itself.",
        "ratio",
        "lower",
    ),
    CatalogueEntry(
        "employee-satisfaction",
        "Employee satisfaction",
        CV,
        "How engaged and content the people building the product are, from a regular short survey "
        "(e.g. an eNPS or a 1-10 score), as the mean or net score of the responses.",
        "score",
        "higher",
    ),
    CatalogueEntry(
        "customer-satisfaction",
        "Customer satisfaction",
        CV,
        "How happy customers are with the product, measured by a recurring survey such as NPS "
        "(promoters minus detractors, -100 to 100) or CSAT (share of satisfied respondents).",
        "NPS",
        "higher",
    ),
    CatalogueEntry(
        "customer-usage-index",
        "Customer usage index",
        CV,
        "How much customers actually use the product or its key features: e.g. active users, sessions "
        "or feature use per customer, compared with what was expected.",
        "index",
        "higher",
    ),
    # --- Unrealized Value: how much more value could it deliver? ---
    CatalogueEntry(
        "market-share",
        "Market share",
        UV,
        "The product's share of its market (revenue or customers) against the whole addressable "
        "market; what is left is value not yet captured.",
        "%",
        "higher",
    ),
    CatalogueEntry(
        "satisfaction-gap",
        "Customer or user satisfaction gap",
        UV,
        "The difference between the satisfaction customers or users would like to have and what they "
        "report today (e.g. desired score minus current score in the same survey).",
        "points",
        "lower",
    ),
    CatalogueEntry(
        "desired-customer-experience",
        "Desired customer experience",
        UV,
        "How far the product is from the experience customers say they want: the share of the "
        "outcomes or jobs they asked for that the product now fulfils.",
        "%",
        "higher",
    ),
    # --- Time-to-Market: how fast can we deliver and learn? ---
    CatalogueEntry(
        "build-integration-frequency",
        "Build and integration frequency",
        T2M,
        "How often changes are integrated and built successfully, e.g. merged and built changes per day.",
        "per day",
        "higher",
    ),
    CatalogueEntry(
        "release-frequency",
        "Release frequency",
        T2M,
        "How often a new version reaches customers, counted as releases in the period.",
        "per month",
        "higher",
    ),
    CatalogueEntry(
        "release-stabilization-period",
        "Release stabilization period",
        T2M,
        "Time spent correcting a release candidate between the end of development and the release "
        "itself; long periods reveal poor quality or late integration.",
        "days",
        "lower",
    ),
    CatalogueEntry(
        "mean-time-to-repair",
        "Mean time to repair",
        T2M,
        "Average time from the moment a fault is detected until it is repaired in production.",
        "hours",
        "lower",
    ),
    CatalogueEntry(
        "customer-cycle-time",
        "Customer cycle time",
        T2M,
        "Time from starting work on a customer-facing change until it is released to customers.",
        "days",
        "lower",
    ),
    CatalogueEntry(
        "lead-time",
        "Lead time",
        T2M,
        "Time from the moment an idea or request is recorded until customers can use it.",
        "days",
        "lower",
    ),
    CatalogueEntry(
        "lead-time-for-changes",
        "Lead time for changes",
        T2M,
        "Time from a code change being committed until it runs in production (median of the period).",
        "hours",
        "lower",
    ),
    CatalogueEntry(
        "deployment-frequency",
        "Deployment frequency",
        T2M,
        "How often the product is deployed to production, counted as deployments in the period.",
        "per week",
        "higher",
    ),
    CatalogueEntry(
        "time-to-restore-service",
        "Time to restore service",
        T2M,
        "Time from a production outage or degradation starting until service to customers is restored "
        "(median of the incidents in the period).",
        "hours",
        "lower",
    ),
    CatalogueEntry(
        "time-to-learn",
        "Time to learn",
        T2M,
        "Time from having an idea to learning from customers whether it works: building, releasing and "
        "gathering and analysing the feedback.",
        "days",
        "lower",
    ),
    CatalogueEntry(
        "time-to-remove-impediment",
        "Time to remove impediment",
        T2M,
        "Average time from an impediment being raised until it is removed and the team can go on.",
        "days",
        "lower",
    ),
    CatalogueEntry(
        "time-to-pivot",
        "Time to pivot",
        T2M,
        "Time from deciding to change course (a new strategy, market or feature set) until the product "
        "delivers value in the new direction.",
        "days",
        "lower",
    ),
    # --- Ability to Innovate: what stops us delivering new value? ---
    CatalogueEntry(
        "innovation-rate",
        "Innovation rate",
        A2I,
        "Share of effort spent on new capabilities rather than on maintaining and supporting existing "
        "ones (new work divided by all work in the period).",
        "%",
        "higher",
    ),
    CatalogueEntry(
        "defect-trends",
        "Defect trends",
        A2I,
        "Defects found (in testing and reported from production) in the period; a rising count eats "
        "the capacity for new work.",
        "defects",
        "lower",
    ),
    CatalogueEntry(
        "on-product-index",
        "On-product index",
        A2I,
        "Share of the team's time actually spent working on the product rather than on meetings, "
        "other projects and interruptions.",
        "%",
        "higher",
    ),
    CatalogueEntry(
        "installed-version-index",
        "Installed version index",
        A2I,
        "Number of product versions customers still run and the team must support; fewer versions "
        "leave more room for new value.",
        "versions",
        "lower",
    ),
    CatalogueEntry(
        "technical-debt",
        "Technical debt",
        A2I,
        "Estimated effort needed to fix known shortcuts and design problems in the product (e.g. from "
        "static analysis or the team's backlog of debt items).",
        "days",
        "lower",
    ),
    CatalogueEntry(
        "production-incident-trends",
        "Production incident trends",
        A2I,
        "Production incidents in the period; every incident takes the team away from new work.",
        "incidents",
        "lower",
    ),
    CatalogueEntry(
        "active-code-branches",
        "Active code branches",
        A2I,
        "Number of code branches being worked on in parallel; many long-lived branches mean costly "
        "merges and late integration.",
        "branches",
        "lower",
    ),
    CatalogueEntry(
        "time-spent-merging",
        "Time spent merging",
        A2I,
        "Time spent merging code from different branches and resolving conflicts, in the period.",
        "hours",
        "lower",
    ),
    CatalogueEntry(
        "time-spent-context-switching",
        "Time spent context-switching",
        A2I,
        "Time lost switching between tasks, products and interruptions, e.g. from time tracking or a "
        "team survey, as a share of working time.",
        "%",
        "lower",
    ),
    CatalogueEntry(
        "change-failure-rate",
        "Change failure rate",
        A2I,
        "Share of changes to production that lead to a failure needing a fix, rollback or patch.",
        "%",
        "lower",
    ),
)
