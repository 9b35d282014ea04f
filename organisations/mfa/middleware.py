from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from organisations.mfa.services import mfa_protected_path, mfa_redirect_url


class StaffMfaMiddleware:
    """Staff on the Django admin or the support console must have passed the second factor in this session.
    Customers (never staff) and every other path are untouched; support_required asks the same question."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if mfa_protected_path(request.path_info):
            url = mfa_redirect_url(request)
            if url is not None:
                return redirect(url)
        return self.get_response(request)
