from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm

from organisations.auth import LOCKED_MESSAGE, sign_in_locked
from organisations.identity import canonical_email
from organisations.locale import ISO, LOCALES, zone_choices
from organisations.names import name_mixes_scripts


class SignInLockMessageMixin:
    """Says "too many failed sign-ins" when the backend's throttle refuses. The backend enforces and counts
    (organisations.auth.EmailBackend); this only chooses the message."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        if username and sign_in_locked(request=self.request, username=username):
            raise forms.ValidationError(LOCKED_MESSAGE, code="locked")
        return super().clean()


class EmailAuthenticationForm(SignInLockMessageMixin, AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password don't match an account. Check them and try again.",
    }


class AdminSignInForm(SignInLockMessageMixin, AdminAuthenticationForm):
    """Django admin's login, with the same throttle message as the portal."""


class ThrottledPasswordResetForm(PasswordResetForm):
    """Finds the account by the same canonical address as sign-in. The view rate-limits the requests."""

    def get_users(self, email):
        user_model = get_user_model()
        users = user_model._default_manager.filter(sign_in_email__canonical=canonical_email(email), is_active=True)
        return (user for user in users if user.has_usable_password())


class SupportRequestForm(forms.Form):
    subject = forms.CharField(max_length=200)
    message = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 4}))
    page_url = forms.CharField(max_length=500, required=False, widget=forms.HiddenInput)


class OrganisationSettingsForm(forms.Form):
    name = forms.CharField(max_length=200, label="Organisation name")
    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Times are shown in it, and it decides what “today” is: default issue dates and overdue invoices.",
    )
    locale = forms.ChoiceField(
        label="Dates and numbers",
        required=False,
        help_text="How dates and amounts are typed in forms and CSV files. YYYY-MM-DD is always accepted too.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = zone_choices()
        self.fields["locale"].choices = [(ISO.code, ISO.label), *((code, lc.label) for code, lc in LOCALES.items())]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        lookalikes = name_mixes_scripts(name)
        if lookalikes:
            shown = ", ".join(f"“{char}” (U+{ord(char):04X})" for char in lookalikes)
            raise forms.ValidationError(
                f"This name mixes alphabets with letters that look alike: {shown}. Type it again in one "
                "alphabet, so nobody can mistake it for another organisation.",
                code="mixed_script",
            )
        return name
