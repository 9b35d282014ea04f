from django.urls import path

from invoices import support_views

app_name = "invoices_support"

urlpatterns = [
    path("support/organisations/<int:org>/batches/", support_views.support_batches, name="batches"),
    path("support/organisations/<int:org>/batches/<int:pk>/", support_views.support_batch, name="batch"),
    path(
        "support/organisations/<int:org>/batches/<int:pk>/invoices/<int:invoice_pk>/",
        support_views.support_invoice,
        name="invoice",
    ),
]
