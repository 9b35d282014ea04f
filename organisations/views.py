from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from organisations.auth import client_ip
from organisations.decorators import admin_required
from organisations.forms import (
    EmailAuthenticationForm,
    OrganisationSettingsForm,
    SupportRequestForm,
    ThrottledPasswordResetForm,
)
from organisations.identity import canonical_email
from organisations.middleware import SESSION_KEY
from organisations.selectors import membership_list_for_organisation
from organisations.services import (
    OrganisationNameLookalike,
    OrganisationNameTaken,
    organisation_locale_set,
    organisation_rename,
    support_request_create,
)
from organisations.throttle import Gate, rate_limit_take, throttle_take

RESET_LIMITED = (
    "We've already sent several reset links for this address or from your network in the last hour. Check your "
    "inbox and spam folder for the latest one, or try again in an hour."
)
SUPPORT_LIMITED = (
    "You've sent several support requests in the last few minutes, and our team has them all. "
    "Please wait a few minutes before sending another; we reply by email."
)


class LoginView(auth_views.LoginView):
    form_class = EmailAuthenticationForm
    redirect_authenticated_user = True


class PasswordResetView(auth_views.PasswordResetView):
    """Each request counts against the address asked for and the client's address (organisations.throttle),
    whether or not an account exists, so the limit reveals nothing about accounts."""

    form_class = ThrottledPasswordResetForm

    def form_valid(self, form):
        allowed = throttle_take(
            gate=Gate.PASSWORD_RESET,
            identity=canonical_email(form.cleaned_data["email"]),
            address=client_ip(self.request),
        )
        if not allowed:
            form.add_error(None, RESET_LIMITED)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)


class LogoutView(auth_views.LogoutView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You're signed out.")
        return response


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    if request.organisation is None and request.is_support:
        return redirect("integrations:support_console")
    return redirect("invoices:dashboard")


@login_required
def no_organisation(request: HttpRequest) -> HttpResponse:
    if request.organisation is not None:
        return redirect("organisations:home")
    return render(request, "organisations/no_organisation.html")


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


@login_required
@require_POST
def switch_organisation(request: HttpRequest) -> HttpResponse:
    try:
        wanted = int(request.POST.get("organisation", ""))
    except ValueError:
        wanted = None
    membership = next((m for m in request.memberships if m.organisation_id == wanted), None)
    if membership is None:
        messages.error(request, "You are not a member of that organisation.")
        return redirect("organisations:home")
    request.session[SESSION_KEY] = membership.organisation_id
    messages.success(request, f"Switched to {membership.organisation.name}.")
    # Another organisation's object page would 404, so land on the dashboard.
    return redirect("invoices:dashboard")


@admin_required
def organisation_settings(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation
    form = OrganisationSettingsForm(
        request.POST or None,
        initial={
            "name": organisation.name,
            "time_zone": organisation.time_zone or "UTC",
            "locale": organisation.locale,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            organisation_rename(organisation=organisation, name=form.cleaned_data["name"], actor=request.user)
        except OrganisationNameLookalike:
            form.add_error(
                "name",
                "That name looks the same as another organisation's name (some letters are look-alikes). "
                "Choose a name that reads differently.",
            )
        except OrganisationNameTaken:
            form.add_error("name", "Another organisation already uses that name. Choose a different one.")
        else:
            zone = form.cleaned_data["time_zone"] or organisation.time_zone
            if zone == (organisation.time_zone or "UTC"):
                zone = organisation.time_zone  # unchanged: "UTC" is what an empty zone shows
            locale = form.cleaned_data["locale"] if "locale" in request.POST else organisation.locale
            organisation_locale_set(organisation=organisation, time_zone=zone, locale=locale, actor=request.user)
            messages.success(request, "Settings saved.")
            return redirect("organisations:settings")
    return render(
        request,
        "organisations/settings.html",
        {
            "form": form,
            "members": membership_list_for_organisation(organisation=organisation),
            "failure_emails": request.membership.failure_emails,
        },
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def support_request_new(request: HttpRequest) -> HttpResponse:
    form = SupportRequestForm(request.POST)
    if form.is_valid() and not rate_limit_take(
        scope="support_request",
        subject=str(request.user.pk),
        limit=settings.SUPPORT_REQUEST_LIMIT,
        window_seconds=settings.SUPPORT_REQUEST_WINDOW_SECONDS,
    ):
        if request.htmx:
            form.add_error(None, SUPPORT_LIMITED)
            return render(request, "organisations/_support_request_form.html", {"support_form": form}, status=429)
        messages.error(request, SUPPORT_LIMITED)
        return redirect(_safe_next(request, reverse("organisations:home")))
    if form.is_valid():
        support_request_create(
            user=request.user,
            organisation=request.organisation,
            subject=form.cleaned_data["subject"],
            message=form.cleaned_data["message"],
            page_url=form.cleaned_data["page_url"],
        )
        if request.htmx:
            return render(request, "organisations/_support_request_sent.html")
        messages.success(request, "Thanks, your request has reached our support team. We reply by email.")
        return redirect(_safe_next(request, reverse("organisations:home")))
    if request.htmx:
        return render(request, "organisations/_support_request_form.html", {"support_form": form}, status=422)
    messages.error(request, "Your support request needs a subject and a message.")
    return redirect(_safe_next(request, reverse("organisations:home")))
