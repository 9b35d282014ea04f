from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from organisations.views import LoginView

urlpatterns = [
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("organisations.urls")),
    path("", include("integrations.urls")),
    path("", include("invoices.urls")),
]
