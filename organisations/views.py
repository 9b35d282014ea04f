from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from organisations.decorators import admin_required
from organisations.forms import EmailAuthenticationForm, OrganisationSettingsForm, SupportRequestForm
from organisations.middleware import SESSION_KEY
from organisations.selectors import membership_list_for_organisation
from organisations.services import OrganisationNameTaken, organisation_rename, support_request_create


class LoginView(auth_views.LoginView):
    form_class = EmailAuthenticationForm
    redirect_authenticated_user = True


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
    form = OrganisationSettingsForm(request.POST or None, initial={"name": organisation.name})
    if request.method == "POST" and form.is_valid():
        try:
            organisation_rename(organisation=organisation, name=form.cleaned_data["name"])
        except OrganisationNameTaken:
            form.add_error("name", "Another organisation already uses that name. Choose a different one.")
        else:
            messages.success(request, "Settings saved.")
            return redirect("organisations:settings")
    return render(
        request,
        "organisations/settings.html",
        {
            "form": form,
            "members": membership_list_for_organisation(organisation=organisation),
        },
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def support_request_new(request: HttpRequest) -> HttpResponse:
    form = SupportRequestForm(request.POST)
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
