from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from organisations.mfa.services import (
    Verification,
    mfa_session_verified,
    recovery_codes_issue,
    safe_next,
    totp_device_confirmed,
    totp_enrolment_start,
    totp_verify,
)

REFUSED = "That code didn't match. Enter the current 6-digit code from your authenticator app, or a recovery code."
LOCKED = "Too many wrong codes. The second step is locked for 15 minutes; try again later or ask another admin."


def _staff_only(request: HttpRequest) -> HttpResponse | None:
    if not request.user.is_staff:
        return redirect("organisations:home")
    return None


@login_required
def verify(request: HttpRequest) -> HttpResponse:
    if (response := _staff_only(request)) is not None:
        return response
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if not totp_device_confirmed(user=request.user):
        return redirect(f"{reverse('mfa:enrol')}?{urlencode({'next': next_url})}")
    if mfa_session_verified(request):
        return redirect(next_url)
    error, status = None, 200
    if request.method == "POST":
        result = totp_verify(request=request, code=request.POST.get("code", ""))
        if result == Verification.ACCEPTED:
            return redirect(next_url)
        error, status = (LOCKED, 429) if result == Verification.LOCKED else (REFUSED, 400)
    return render(request, "organisations/mfa/verify.html", {"next": next_url, "error": error}, status=status)


@login_required
def enrol(request: HttpRequest) -> HttpResponse:
    if (response := _staff_only(request)) is not None:
        return response
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if totp_device_confirmed(user=request.user):
        return redirect(f"{reverse('mfa:verify')}?{urlencode({'next': next_url})}")
    error, status = None, 200
    if request.method == "POST":
        result = totp_verify(request=request, code=request.POST.get("code", ""))
        if result == Verification.ACCEPTED:
            codes = recovery_codes_issue(user=request.user)
            # Rendered, not redirected: the recovery codes are shown this once and stored only as hashes.
            response = render(request, "organisations/mfa/recovery_codes.html", {"codes": codes, "next": next_url})
            response["Cache-Control"] = "no-store"
            return response
        error, status = (LOCKED, 429) if result == Verification.LOCKED else (REFUSED, 400)
    enrolment = totp_enrolment_start(user=request.user)
    context = {"next": next_url, "error": error, "secret": enrolment.secret, "uri": enrolment.uri}
    response = render(request, "organisations/mfa/enrol.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response
