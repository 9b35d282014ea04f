from django.contrib import admin
from django.urls import include, path

from coordinoter.health import healthz, readyz
from coordinoter.metrics import metrics_view
from organisations.views import LoginView, LogoutView, PasswordResetView

urlpatterns = [
    # First: the webhook receiver is the busiest URL (Xero posts every change), so it resolves in one step.
    path("", include("integrations.webhooks.urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/password_reset/", PasswordResetView.as_view(), name="password_reset"),
    path("", include("integrations.signin.urls")),
    path("", include("organisations.mfa.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("organisations.urls")),
    path("", include("integrations.urls")),
    path("", include("invoices.urls")),
    path("", include("invoices.created_in_xero.urls")),
    path("", include("invoices.support.urls")),
]
