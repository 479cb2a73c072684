"""The experiment planner page: a power calculator that recalculates as you type (htmx), "Use this sample
size" (members and above) and the power achieved so far. hypotheses.planning does the work."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from truenorth.core.errors import Conflict, ValidationFailed
from truenorth.core.forms import VersionField, require_version
from truenorth.htmx import is_htmx
from truenorth.hypotheses import planning, services
from truenorth.hypotheses.models import Experiment
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership

PLAN_FIELDS = (
    "metric_kind",
    "baseline_rate",
    "baseline_mean",
    "baseline_sd",
    "mde",
    "relative",
    "alpha",
    "power",
    "variations",
    "allocation",
    "daily_traffic",
)


class PlanForm(forms.Form):
    metric_kind = forms.ChoiceField(
        label="Metric", choices=[("proportion", "Conversion rate (proportion)"), ("mean", "Mean per unit")]
    )
    baseline_rate = forms.CharField(
        label="Baseline rate", required=False, help_text="Proportions: the control's rate, e.g. 0.12."
    )
    baseline_mean = forms.CharField(label="Baseline mean", required=False, help_text="Means: e.g. 42.5.")
    baseline_sd = forms.CharField(label="Standard deviation", required=False, help_text="Means: per unit.")
    mde = forms.CharField(label="Minimum detectable effect", help_text="0.05: a 5 % lift.")
    relative = forms.ChoiceField(
        label="The effect is", choices=[("true", "relative to the baseline"), ("false", "absolute")]
    )
    alpha = forms.CharField(label="Significance level (alpha)")
    power = forms.CharField(label="Power")
    variations = forms.CharField(label="Variations (with the control)")
    allocation = forms.CharField(
        label="Allocation", required=False, help_text="Shares, control first, e.g. 0.5, 0.5; empty: equal."
    )
    daily_traffic = forms.CharField(
        label="Units per day", required=False, help_text="All variations together; gives the days needed."
    )
    version = VersionField(required=False)  # required to apply the plan (core.forms.require_version)

    def plan(self) -> planning.Plan:
        """The plan for the cleaned inputs; ValidationFailed names the field."""
        data = self.cleaned_data
        raw = (data.get("allocation") or "").replace(";", ",").strip()
        return planning.plan_sample_size(
            metric_kind=data["metric_kind"],
            baseline_rate=data.get("baseline_rate") or None,
            baseline_mean=data.get("baseline_mean") or None,
            baseline_sd=data.get("baseline_sd") or None,
            mde=data.get("mde"),
            relative=data.get("relative") != "false",
            alpha=data.get("alpha"),
            power=data.get("power"),
            variations=data.get("variations"),
            allocation=[part for part in raw.split(",") if part.strip()] if raw else None,
            daily_traffic=data.get("daily_traffic") or None,
        )


def _initial(e: Experiment) -> dict[str, Any]:
    variations = list(e.variations.all())
    baseline = e.hypothesis.baseline
    return {
        "metric_kind": "proportion",
        "baseline_rate": f"{baseline:g}" if baseline is not None and 0 < baseline < 1 else "",
        "mde": f"{e.minimum_detectable_effect:g}" if e.minimum_detectable_effect else "",
        "relative": "true",
        "alpha": f"{e.alpha:g}",
        "power": f"{e.power:g}",
        "variations": str(max(len(variations), 2)),
        "allocation": ", ".join(f"{v.allocation:g}" for v in variations) if len(variations) >= 2 else "",
        "version": e.version,
    }


def _rows(e: Experiment, result: planning.Plan | None) -> list[tuple[str, float, int]]:
    if result is None:
        return []
    names = [v.name for v in e.variations.all()]
    if len(names) != result.variations:
        names = ["Control", *(f"Variation {i}" for i in range(1, result.variations))]
    return list(zip(names, result.allocation, result.per_variation, strict=True))


def _calculate(form: PlanForm) -> planning.Plan | None:
    if not form.is_valid():
        return None
    try:
        return form.plan()
    except ValidationFailed as exc:
        apply_error(form, exc)
        return None


@org_view
@require_http_methods(["GET", "POST"])
def plan(request: HttpRequest, membership: Membership, experiment_id: int) -> HttpResponse:
    e = services.get_experiment(membership, experiment_id)
    url = reverse("hypotheses:plan", args=(membership.organisation.slug, e.pk))
    if request.method == "POST":
        services.require_writer(membership)
        form = PlanForm(request.POST)
        require_version(form)
        result = _calculate(form)
        if result is not None:
            try:
                planning.apply_plan(
                    membership, current_user(request), e.pk, result, version=form.cleaned_data["version"]
                )
            except (ValidationFailed, Conflict) as exc:
                apply_error(form, exc)
            else:
                messages.success(request, f"Planned sample size set to {result.total:,} units.")
                return redirect(url)
    else:
        submitted = "mde" in request.GET
        form = PlanForm(request.GET if submitted else None, initial=_initial(e))
        if submitted:
            result = _calculate(form)
        else:
            bound = PlanForm({**_initial(e)})
            result = _calculate(bound) if bound.is_valid() else None
    achieved = planning.achieved_power_detail(membership, e.pk)
    context = {
        "membership": membership,
        "org": membership.organisation,
        "e": e,
        "h": e.hypothesis,
        "form": form,
        "plan": result,
        "can_write": membership.can_write,
        "achieved": achieved,
        "achieved_pct": None if achieved.power is None else f"{achieved.power * 100:.1f}",
        "plan_rows": _rows(e, result),
    }
    if is_htmx(request) and request.method == "GET":
        return render(request, "hypotheses/plan_result.html", context)
    status = 422 if request.method == "POST" else 200
    return render(request, "hypotheses/plan.html", context, status=status)
