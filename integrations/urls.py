from django.urls import path

from integrations import support, views
from integrations.outbound import views as outbound_views

app_name = "integrations"

urlpatterns = [
    path("integrations/", views.manage_integrations, name="manage"),
    path("integrations/xero/connect/", views.xero_connect, name="xero_connect"),
    # Must equal XERO_REDIRECT_URI's path (the default is SITE_URL + this path).
    path("integrations/xero/callback/", views.xero_callback, name="xero_callback"),
    path("integrations/xero/choose/<uuid:pk>/", views.xero_choose, name="xero_choose"),
    path("integrations/xero/disconnect/", views.xero_disconnect, name="xero_disconnect"),
    path("support/", support.support_console, name="support_console"),
    path("support/xero-usage/", support.support_xero_usage, name="support_xero_usage"),
    path("support/organisations/<int:pk>/", support.support_organisation, name="support_organisation"),
    path(
        "support/organisations/<int:pk>/xero/disconnect/",
        support.support_xero_disconnect,
        name="support_xero_disconnect",
    ),
    path("support/organisations/<int:pk>/xero/refresh/", support.support_xero_refresh, name="support_xero_refresh"),
    path(
        "support/organisations/<int:pk>/xero/request-reconnect/",
        support.support_xero_request_reconnect,
        name="support_xero_request_reconnect",
    ),
    path(
        "support/organisations/<int:pk>/xero/writes/<int:operation_id>/retry/",
        outbound_views.support_operation_retry,
        name="support_operation_retry",
    ),
    path("support/requests/<int:pk>/", support.support_request_detail, name="support_request"),
    path("support/requests/<int:pk>/resolve/", support.support_request_resolve_view, name="support_request_resolve"),
]
