from django.urls import path

from invoices.created_in_xero import views

app_name = "invoices_xero"

urlpatterns = [
    path("invoices/created-in-xero/", views.created_in_xero, name="created_in_xero"),
    path("invoices/<int:pk>/xero/void/", views.invoice_void, name="invoice_void"),
    path("invoices/<int:pk>/xero/delete/", views.invoice_delete, name="invoice_delete"),
    path("invoices/<int:pk>/xero/edit/", views.invoice_edit, name="invoice_edit"),
    path("invoices/xero-states/", views.invoice_xero_states, name="invoice_xero_states"),
]
