from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from organisations.locale import zone_of
from organisations.roles import user_is_support
from organisations.selectors import membership_list_for_user

SESSION_KEY = "current_organisation_id"


class CurrentOrganisationMiddleware:
    """Puts the current organisation on the request: the one chosen in the session, or the first membership.

    request.organisation is None for anonymous users, for support staff who are members of nothing, and for
    users with no membership; views that need one are guarded by organisations.decorators.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.organisation = None
        request.membership = None
        request.memberships = []
        request.is_support = False
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            request.is_support = user_is_support(user)
            memberships = membership_list_for_user(user=user)
            request.memberships = memberships
            chosen = request.session.get(SESSION_KEY)
            current = next((m for m in memberships if m.organisation_id == chosen), None)
            if current is None and memberships:
                current = memberships[0]
                request.session[SESSION_KEY] = current.organisation_id
            if current is not None:
                request.membership = current
                request.organisation = current.organisation
        return self.get_response(request)


class OrganisationTimezoneMiddleware:
    """Shows every time in the current organisation's zone (templates name it: "2026-12-03 09:15 AEDT"), and makes
    `timezone.localdate()` its today. Without an organisation: UTC. Deactivated after each request, so a thread
    serving another organisation next never keeps this one's zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timezone.activate(zone_of(getattr(request, "organisation", None)))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
