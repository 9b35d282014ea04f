"""Reading Sign in with Xero state: a user's own link and their own open sign-up choice (another's is a 404)."""

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404

from integrations.models import XeroPendingTenantChoice
from integrations.signin.models import XeroIdentity


def xero_identity_for(user: AbstractBaseUser) -> XeroIdentity | None:
    return XeroIdentity.objects.filter(user=user).first()


def signup_pending_choice_get(user: AbstractBaseUser, *, pk: uuid.UUID | str) -> XeroPendingTenantChoice:
    choice = XeroPendingTenantChoice.objects.filter(user=user, organisation__isnull=True, pk=pk).first()
    if choice is None:
        raise Http404("No such Xero organisation choice.")
    return choice
