"""Re-encrypt every stored token under the first key of TOKEN_ENCRYPTION_KEYS.

Rotation: put the new key first (TOKEN_ENCRYPTION_KEYS=new,old), deploy, run this, then drop the old key.
"""

from django.core.management.base import BaseCommand

from integrations.xero.tokens import token_keys_rotate


class Command(BaseCommand):
    help = "Re-encrypt stored Xero tokens and PKCE verifiers with the first TOKEN_ENCRYPTION_KEYS key."

    def handle(self, *args, **options) -> None:
        counts = token_keys_rotate()
        for label, rewritten in counts.items():
            self.stdout.write(f"{label}: {rewritten} row(s) re-encrypted")
        self.stdout.write(self.style.SUCCESS("Done. Every stored secret now decrypts with the first key."))
