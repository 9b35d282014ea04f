"""Guards for views. Anonymous users go to login; the wrong role gets 403; tenant ids are checked by selectors."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from organisations.mfa.services import mfa_redirect_url

View = Callable[..., HttpResponse]


def member_required(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.organisation is None:
            if request.is_support:
                return redirect("integrations:support_console")
            return redirect("organisations:no_organisation")
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view: View) -> View:
    @member_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.membership.is_admin:
            raise PermissionDenied("Only an admin of this organisation can do that.")
        return view(request, *args, **kwargs)

    return wrapper


def support_required(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.is_support:
            raise PermissionDenied("The support console is for Coordinoter support staff.")
        if (mfa_url := mfa_redirect_url(request)) is not None:
            return redirect(mfa_url)
        return view(request, *args, **kwargs)

    return wrapper
