from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from truenorth.accounts import views, views_sso, views_twofactor

app_name = "accounts"

urlpatterns = [
    path("signup/", views.sign_up, name="signup"),
    path("sso/login/", views_sso.sso_login, name="sso_login"),
    path("sso/callback/", views_sso.sso_callback, name="sso_callback"),
    path("login/", views.sign_in, name="login"),
    path("login/link/<str:token>/", views.sign_in_link, name="sign_in_link"),
    path("logout/", views.sign_out, name="logout"),
    path("login/two-factor/", views_twofactor.sign_in_step, name="two_factor_sign_in"),
    path("two-factor/", views_twofactor.two_factor, name="two_factor"),
    path("two-factor/recovery-codes/", views_twofactor.regenerate_codes, name="two_factor_recovery_codes"),
    path("two-factor/disable/", views_twofactor.disable, name="two_factor_disable"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<id:token_id>/revoke/", views.revoke_token, name="revoke_token"),
    path("password/", views.PasswordChange.as_view(), name="password_change"),
    path(
        "password-reset/",
        views.password_sign_in_only(
            auth_views.PasswordResetView.as_view(
                template_name="accounts/password_reset.html",
                email_template_name="accounts/password_reset_email.txt",
                subject_template_name="accounts/password_reset_subject.txt",
                success_url=reverse_lazy("accounts:password_reset_done"),
            )
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        views.password_sign_in_only(
            auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html")
        ),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views.password_sign_in_only(
            views.PasswordResetConfirm.as_view(
                template_name="accounts/password_reset_confirm.html",
                success_url=reverse_lazy("accounts:password_reset_complete"),
            )
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/complete/",
        views.password_sign_in_only(
            auth_views.PasswordResetCompleteView.as_view(
                template_name="accounts/password_reset_complete.html"
            )
        ),
        name="password_reset_complete",
    ),
]
