from django.urls import path

from invoices import xero_views

app_name = "invoices_xero"

urlpatterns = [
    path("invoices/created-in-xero/", xero_views.created_in_xero, name="created_in_xero"),
    path("invoices/<int:pk>/xero/void/", xero_views.invoice_void, name="invoice_void"),
    path("invoices/<int:pk>/xero/delete/", xero_views.invoice_delete, name="invoice_delete"),
    path("invoices/<int:pk>/xero/edit/", xero_views.invoice_edit, name="invoice_edit"),
    path("invoices/xero-states/", xero_views.invoice_xero_states, name="invoice_xero_states"),
]
