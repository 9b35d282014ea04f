from django.apps import AppConfig


class OrganisationsConfig(AppConfig):
    name = "organisations"
    verbose_name = "Organisations"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from organisations.identity import sign_in_email_sync

        def user_saved(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
            if raw or (update_fields is not None and "email" not in update_fields):
                return  # fixtures; saves that leave the email alone (last_login on every sign-in)
            sign_in_email_sync(user=instance)

        post_save.connect(user_saved, sender=get_user_model(), dispatch_uid="organisations.sign_in_email_sync")
