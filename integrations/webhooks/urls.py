from django.urls import path

from integrations.webhooks import receive, support

app_name = "webhooks"

urlpatterns = [
    # The one webhook URL for the whole app (configured in Xero's developer portal).
    path("integrations/xero/webhooks/", receive.xero_webhook_receive, name="xero_receive"),
    path("support/webhooks/", support.support_webhook_inbox, name="support_inbox"),
    path(
        "support/organisations/<int:pk>/webhooks/",
        support.support_webhook_inbox_organisation,
        name="support_organisation_inbox",
    ),
    path(
        "support/organisations/<int:pk>/webhooks/retry-failed/",
        support.support_webhook_retry_failed,
        name="support_retry_failed",
    ),
    path(
        "support/organisations/<int:pk>/webhooks/reconcile/",
        support.support_webhook_reconcile,
        name="support_reconcile",
    ),
]
