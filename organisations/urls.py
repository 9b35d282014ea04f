from django.urls import path

from organisations import views

app_name = "organisations"

urlpatterns = [
    path("", views.home, name="home"),
    path("organisations/none/", views.no_organisation, name="no_organisation"),
    path("organisations/switch/", views.switch_organisation, name="switch"),
    path("settings/", views.organisation_settings, name="settings"),
    path("support-requests/new/", views.support_request_new, name="support_request_new"),
]
