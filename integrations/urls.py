from django.urls import path

from integrations import support, views

app_name = "integrations"

urlpatterns = [
    path("integrations/", views.manage_integrations, name="manage"),
    path("support/", support.support_console, name="support_console"),
    path("support/requests/<int:pk>/resolve/", support.support_request_resolve_view,
         name="support_request_resolve"),
]
