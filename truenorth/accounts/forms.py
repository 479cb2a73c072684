from __future__ import annotations

from django import forms

from truenorth.accounts.models import APIToken


class SignUpForm(forms.Form):
    name = forms.CharField(max_length=150, required=False, label="Your name")
    email = forms.EmailField(label="E-mail address")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        label="Password",
        help_text="At least 10 characters; not a common password.",
    )
    organisation = forms.CharField(
        max_length=120,
        required=False,
        label="Organisation name",
        help_text="Creates a new organisation you own. Leave empty if you were invited.",
    )


class SignInForm(forms.Form):
    email = forms.EmailField(
        label="E-mail address", widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), label="Password"
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name", help_text="e.g. 'CI pipeline' or 'laptop'.")
    scope = forms.ChoiceField(choices=APIToken.Scope.choices, initial=APIToken.Scope.READ, label="Scope")
