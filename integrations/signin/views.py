"""Sign in, sign up and link with Xero: start the round trip, take Xero's answer, choose the organisation at
sign-up, and the account page where a person links or unlinks Xero. Thin: parse, call one service, sign in."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from integrations.signin.models import XeroSignInState
from integrations.signin.selectors import signup_pending_choice_get, xero_identity_for
from integrations.signin.services import (
    SignInOutcome,
    xero_identity_unlink,
    xero_signin_callback,
    xero_signin_start,
    xero_signup_choice_cancel,
    xero_signup_choose,
    xero_signup_pending_bind,
)
from organisations.auth import client_ip

BACKEND = "organisations.auth.EmailBackend"
Intent = XeroSignInState.Intent


def _session_key(request: HttpRequest) -> str:
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


@require_POST
def xero_sign_in(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("organisations:home")
    return redirect(xero_signin_start(intent=Intent.SIGN_IN, session_key=_session_key(request)))


@require_POST
def xero_sign_up(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("organisations:home")
    return redirect(xero_signin_start(intent=Intent.SIGN_UP, session_key=_session_key(request)))


@login_required
@require_POST
def xero_link(request: HttpRequest) -> HttpResponse:
    return redirect(xero_signin_start(intent=Intent.LINK, session_key=_session_key(request), user=request.user))


@require_GET
def xero_signin_return(request: HttpRequest) -> HttpResponse:
    outcome = xero_signin_callback(
        session_key=request.session.session_key or "",
        state=request.GET.get("state", ""),
        code=request.GET.get("code", ""),
        error=request.GET.get("error", ""),
        client_address=client_ip(request),
        signed_in_user=request.user if request.user.is_authenticated else None,
    )
    return _finish(request, outcome)


def _finish(request: HttpRequest, outcome: SignInOutcome) -> HttpResponse:
    if outcome.kind in ("signed_in", "signed_up", "choose"):
        login(request, outcome.user, backend=BACKEND)
    if outcome.kind == "choose":
        xero_signup_pending_bind(user=outcome.user, pending_id=outcome.pending_id, session_key=_session_key(request))
        return redirect("xero_signin:choose", pk=outcome.pending_id)
    level = messages.SUCCESS if outcome.kind in ("signed_in", "signed_up", "linked") else messages.INFO
    if outcome.kind in ("refused", "failed", "locked"):
        level = messages.ERROR
    messages.add_message(request, level, outcome.message)
    if outcome.kind in ("signed_in", "signed_up"):
        return redirect("organisations:home")
    if request.user.is_authenticated:
        return redirect("xero_signin:account")
    return redirect("login")


@login_required
@require_http_methods(["GET", "POST"])
def xero_signup_choice(request: HttpRequest, pk) -> HttpResponse:
    pending = signup_pending_choice_get(request.user, pk=pk)
    error = ""
    if request.method == "POST":
        if "cancel" in request.POST:
            outcome = xero_signup_choice_cancel(user=request.user, pending_id=pending.pk)
            messages.info(request, outcome.message)
            return redirect("organisations:home")
        outcome = xero_signup_choose(
            user=request.user,
            session_key=_session_key(request),
            pending_id=pending.pk,
            tenant_id=request.POST.get("tenant_id", ""),
        )
        if outcome.kind != "choose":
            messages.add_message(
                request, messages.SUCCESS if outcome.kind == "signed_up" else messages.ERROR, outcome.message
            )
            return redirect("organisations:home")
        error = outcome.message
    elif pending.consumed_at is not None:
        raise Http404("That choice was already made.")
    return render(
        request,
        "signin/choose.html",
        {"pending": pending, "candidates": pending.candidates, "error": error},
        status=422 if error else 200,
    )


@login_required
def xero_account(request: HttpRequest) -> HttpResponse:
    return render(request, "signin/account.html", {"link": xero_identity_for(request.user)})


@login_required
@require_POST
def xero_unlink(request: HttpRequest) -> HttpResponse:
    if xero_identity_unlink(user=request.user):
        messages.success(request, "Xero unlinked: sign in with your email and password from now on.")
    else:
        messages.error(
            request,
            "Xero is the only way you sign in, so it can't be unlinked yet. Set a password first "
            "(Forgot your password? on the sign-in page sends a link), then unlink Xero.",
        )
    return redirect("xero_signin:account")
