from __future__ import annotations

from django import forms

from truenorth.core.forms import VersionField
from truenorth.orgs.models import Role


class OrganisationForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name")
    slug = forms.SlugField(
        max_length=60,
        required=False,
        label="Address",
        help_text="Used in links: /o/<address>/. Derived from the name if empty.",
    )
    version = VersionField(required=False)  # required when editing (core.forms.require_version)


class OrganisationSettingsForm(OrganisationForm):
    """The settings page: the organisation's name and address, and its two-factor policy."""

    # Explained under the form (orgs/settings.html): Pico draws a checkbox's help text over the box.
    require_two_factor = forms.BooleanField(required=False, label="Require two-factor sign-in")


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER, label="Role")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, label="Role")
