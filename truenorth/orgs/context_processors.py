from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from truenorth.accounts.models import User
from truenorth.orgs.services import memberships_of


def organisations(request: HttpRequest) -> dict[str, Any]:
    """The signed-in user's organisations (for the switcher) and the current one."""
    user = getattr(request, "user", None)
    if not isinstance(user, User):
        return {}
    current = getattr(request, "membership", None)

    def _all() -> list[Any]:
        return list(memberships_of(user))

    return {"my_memberships": _all, "current_membership": current}
