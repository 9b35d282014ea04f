from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from organisations.banners import banners_for


def portal(request: HttpRequest) -> dict:
    membership = getattr(request, "membership", None)
    return {
        "current_organisation": getattr(request, "organisation", None),
        "current_membership": membership,
        "memberships": getattr(request, "memberships", []),
        "is_org_admin": bool(membership and membership.is_admin),
        "is_support": getattr(request, "is_support", False),
        "portal_banners": SimpleLazyObject(lambda: banners_for(request)),
    }
