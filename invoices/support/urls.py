from django.urls import path

from invoices.support import views

app_name = "invoices_support"

urlpatterns = [
    path("support/organisations/<int:org>/batches/", views.support_batches, name="batches"),
    path("support/organisations/<int:org>/batches/<int:pk>/", views.support_batch, name="batch"),
    path(
        "support/organisations/<int:org>/batches/<int:pk>/invoices/<int:invoice_pk>/",
        views.support_invoice,
        name="invoice",
    ),
]
