from __future__ import annotations

from django.urls import include, path, register_converter

from truenorth.api import api
from truenorth.core.converters import ObjectIdConverter
from truenorth.ops.metrics import metrics_view

register_converter(ObjectIdConverter, "id")

urlpatterns = [
    # First: every API request used to try the ~180 page patterns below before reaching it (0.07 ms
    # of a kept list's 0.6); no page's address could start with api/ (tests/test_urls.py).
    path("api/v1/", api.urls),
    path("", include("truenorth.core.urls")),
    # Prometheus metrics behind a token (truenorth/ops/metrics.py).
    path("metrics", metrics_view, name="metrics"),
    path("", include("truenorth.home.urls")),
    path("accounts/", include("truenorth.accounts.urls")),
    path("", include("truenorth.orgs.urls")),
    path("", include("truenorth.strategy.urls")),
    path("", include("truenorth.notifications.urls")),
    path("", include("truenorth.measures.urls")),
    path("", include("truenorth.hypotheses.urls")),
    path("", include("truenorth.jobs.urls")),
    path("", include("truenorth.search.urls")),
    path("", include("truenorth.delivery.urls")),
    path("", include("truenorth.engagement.urls")),
    path("", include("truenorth.handbook.urls")),
]

handler400 = "truenorth.core.views.bad_request"
handler403 = "truenorth.core.views.permission_denied"
handler404 = "truenorth.core.views.not_found"
handler500 = "truenorth.core.views.server_error"
