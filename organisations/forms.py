from django import forms
from django.contrib.auth.forms import AuthenticationForm

from organisations.auth import client_ip, login_failure_record, login_failures_clear, login_is_locked


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password don't match an account. Check them and try again.",
        "locked": "Too many failed sign-ins. Wait 15 minutes, or reset your password.",
    }

    def clean(self):
        email = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request)
        if email and login_is_locked(email=email, ip=ip):
            raise forms.ValidationError(self.error_messages["locked"], code="locked")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if email:
                login_failure_record(email=email, ip=ip)
            raise
        login_failures_clear(email=email)
        return cleaned


class SupportRequestForm(forms.Form):
    subject = forms.CharField(max_length=200)
    message = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 4}))
    page_url = forms.CharField(max_length=500, required=False, widget=forms.HiddenInput)


class OrganisationSettingsForm(forms.Form):
    name = forms.CharField(max_length=200, label="Organisation name")
