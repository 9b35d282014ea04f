"""Print the current TOTP code of a staff user's device, for the local demo (`make run`). Refuses unless DEBUG:
in production it would let anyone with a shell skip the second factor."""

import pyotp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from organisations.identity import canonical_email
from organisations.models import TotpDevice


class Command(BaseCommand):
    help = "DEBUG only: print the current two-step code of a user's authenticator device (the demo support login)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")

    def handle(self, *args, email: str, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("totp_code works only with DEBUG on (local demo); it never runs in production.")
        user = get_user_model().objects.filter(sign_in_email__canonical=canonical_email(email)).first()
        device = TotpDevice.objects.filter(user=user).first() if user else None
        if device is None:
            raise CommandError(f"No authenticator device for {email}.")
        self.stdout.write(pyotp.TOTP(device.secret).now())
