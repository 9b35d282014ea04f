from django.apps import AppConfig


class OrganisationsConfig(AppConfig):
    name = "organisations"
    verbose_name = "Organisations"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in as user_logged_in_signal
        from django.db.models.signals import post_save

        from organisations.identity import sign_in_email_sync
        from organisations.mfa.services import mfa_session_clear

        def user_saved(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
            if raw or (update_fields is not None and "email" not in update_fields):
                return  # fixtures; saves that leave the email alone (last_login on every sign-in)
            sign_in_email_sync(user=instance)

        def user_logged_in(sender, request, user, **kwargs) -> None:
            # Each sign-in (password or Xero) asks for a fresh second factor, even in a session that had one.
            if request is not None and hasattr(request, "session"):
                mfa_session_clear(request.session)

        user_logged_in_signal.connect(user_logged_in, dispatch_uid="organisations.mfa_session_clear")
        post_save.connect(user_saved, sender=get_user_model(), dispatch_uid="organisations.sign_in_email_sync")
