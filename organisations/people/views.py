"""The people pages (admins): members and their roles, invitations, the audit trail and the failure emails; and the
invitation link anyone opens from their email."""

from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from organisations.audit import audit_trail
from organisations.auth import LOCKED_MESSAGE, sign_in_locked
from organisations.decorators import admin_required
from organisations.middleware import SESSION_KEY
from organisations.models import Invitation, Membership
from organisations.people.forms import InvitationSignInForm, InvitationSignUpForm, InviteForm, RoleForm
from organisations.people.services import (
    InvitationUnusable,
    PeopleError,
    account_for_email,
    invitation_accept,
    invitation_create,
    invitation_for_token,
    invitation_problem,
    invitation_revoke,
    invitation_sign_up,
    membership_failure_emails_set,
    membership_remove,
    membership_role_change,
)
from organisations.selectors import invitation_list_pending, membership_get, membership_list_for_organisation


def _people_page(request: HttpRequest, *, invite_form: InviteForm | None = None, status: int = 200) -> HttpResponse:
    organisation = request.organisation
    members = list(membership_list_for_organisation(organisation=organisation))
    admins = sum(1 for m in members if m.is_admin)
    for m in members:
        m.is_last_admin = m.is_admin and admins == 1
    return render(
        request,
        "organisations/people.html",
        {
            "members": members,
            "invitations": invitation_list_pending(organisation=organisation),
            "invite_form": invite_form or InviteForm(),
            "roles": Membership.Role.choices,
            "now": timezone.now(),
        },
        status=status,
    )


@admin_required
def people(request: HttpRequest) -> HttpResponse:
    return _people_page(request)


@admin_required
@require_POST
def people_invite(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            sent = invitation_create(
                organisation=request.organisation,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
            )
        except PeopleError as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(
                request,
                f"Invitation sent to {sent.invitation.email}. The link works once and expires "
                f"{sent.invitation.expires_at:%d %B %Y}.",
            )
            return redirect("organisations:people")
    return _people_page(request, invite_form=form, status=422)


@admin_required
@require_POST
def people_role(request: HttpRequest, pk: int) -> HttpResponse:
    membership_get(organisation=request.organisation, pk=pk)  # another organisation's member: 404 first
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Admin or Accountant.")
        return redirect("organisations:people")
    try:
        membership = membership_role_change(
            organisation=request.organisation, pk=pk, role=form.cleaned_data["role"], actor=request.user
        )
    except Membership.DoesNotExist as exc:
        raise Http404("No such member.") from exc
    except PeopleError as exc:
        messages.error(request, str(exc))
        return redirect("organisations:people")
    messages.success(request, f"{membership.user.email} is now {membership.get_role_display()}.")
    if membership.user_id == request.user.pk and not membership.is_admin:
        return redirect("invoices:dashboard")  # no longer an admin: the people page would be a 403
    return redirect("organisations:people")


@admin_required
@require_POST
def people_remove(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        membership = membership_remove(organisation=request.organisation, pk=pk, actor=request.user)
    except Membership.DoesNotExist as exc:
        raise Http404("No such member.") from exc
    except PeopleError as exc:
        messages.error(request, str(exc))
        return redirect("organisations:people")
    messages.success(request, f"{membership.user.email} was removed from {request.organisation.name}.")
    if membership.user_id == request.user.pk:
        request.session.pop(SESSION_KEY, None)
        return redirect("organisations:home")
    return redirect("organisations:people")


@admin_required
@require_POST
def people_invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        invitation = invitation_revoke(organisation=request.organisation, pk=pk, actor=request.user)
    except Invitation.DoesNotExist as exc:
        raise Http404("No such invitation.") from exc
    messages.success(request, f"The invitation of {invitation.email} was withdrawn.")
    return redirect("organisations:people")


@admin_required
def audit(request: HttpRequest) -> HttpResponse:
    page = Paginator(audit_trail(request.organisation), 50).get_page(request.GET.get("page"))
    return render(request, "organisations/audit.html", {"page": page})


@admin_required
@require_POST
def failure_emails(request: HttpRequest) -> HttpResponse:
    enabled = request.POST.get("enabled") == "on"
    membership_failure_emails_set(membership=request.membership, enabled=enabled)
    messages.success(
        request,
        "You'll get an email when invoices fail or need attention (one digest, not one per invoice)."
        if enabled
        else "You won't get emails about failed invoices. The dashboard still shows them.",
    )
    return redirect("organisations:settings")


# ---------------------------------------------------------------- the invitation link


def _joined(request: HttpRequest, membership: Membership) -> HttpResponse:
    request.session[SESSION_KEY] = membership.organisation_id
    messages.success(
        request, f"Welcome to {membership.organisation.name}. You joined as {membership.get_role_display()}."
    )
    return redirect("invoices:dashboard")


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Open, sign up or sign in, and join. The token is in the path (the emailed link); the log filter
    (coordinoter.logging) blanks it out of request lines."""
    found = invitation_for_token(token)
    problem = invitation_problem(found)
    # No support form on this page: its hidden page address would carry the link's token into a support request.
    context = {"invitation": found, "problem": problem, "hide_support_form": True}
    if problem:
        return render(request, "organisations/invitation.html", context, status=404 if found is None else 410)
    account = account_for_email(found.email)
    user = request.user
    form = None
    if user.is_authenticated:
        context["mode"] = "join"
        if request.method == "POST":
            try:
                return _joined(request, invitation_accept(token=token, user=user))
            except InvitationUnusable as exc:
                context["problem"] = str(exc)
                return render(request, "organisations/invitation.html", context, status=409)
    elif account is not None:
        context["mode"] = "sign_in"
        form = InvitationSignInForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            signed_in = authenticate(request, username=found.email, password=form.cleaned_data["password"])
            if signed_in is None:
                locked = sign_in_locked(request=request, username=found.email)
                form.add_error("password", LOCKED_MESSAGE if locked else "That password doesn't match the account.")
            else:
                login(request, signed_in)
                return _joined(request, invitation_accept(token=token, user=signed_in))
    else:
        context["mode"] = "sign_up"
        form = InvitationSignUpForm(request.POST or None, email=found.email)
        if request.method == "POST" and form.is_valid():
            try:
                membership = invitation_sign_up(
                    token=token,
                    password=form.cleaned_data["password1"],
                    first_name=form.cleaned_data["first_name"],
                    last_name=form.cleaned_data["last_name"],
                )
            except InvitationUnusable as exc:
                form.add_error(None, str(exc))
            else:
                login(request, membership.user, backend="organisations.auth.EmailBackend")
                return _joined(request, membership)
    context["form"] = form
    return render(
        request, "organisations/invitation.html", context, status=422 if form is not None and form.errors else 200
    )
