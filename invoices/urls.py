from django.urls import path

from invoices import views
from invoices.fix import views as fix_views
from invoices.invoice_list import views as list_views

app_name = "invoices"

urlpatterns = [
    path("portal/", views.dashboard, name="dashboard"),
    path("batches/", views.batches, name="batch_list"),
    path("batches/new/", views.batch_new, name="batch_new"),
    path("batches/upload/", views.batch_upload, name="batch_upload"),
    path("batches/upload/sample.csv", views.batch_sample_csv, name="batch_sample_csv"),
    path("batches/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("batches/<int:pk>/progress/", views.batch_progress_partial, name="batch_progress"),
    path("batches/<int:pk>/retry/", views.batch_retry, name="batch_retry"),
    path("batches/<int:pk>/invoices/<int:invoice_pk>/retry/", views.invoice_retry, name="invoice_retry"),
    path("settings/xero-mapping/", views.mapping_settings, name="mapping"),
    # Fix and resend (issue 12): invoices not in Xero, and not-synced batches sent on purpose.
    path("invoices/<int:pk>/fix/", fix_views.invoice_fix_page, name="invoice_fix"),
    path("invoices/<int:pk>/cancel/", fix_views.invoice_cancel_page, name="invoice_cancel"),
    path("invoices/<int:pk>/resend/", fix_views.invoice_resend_action, name="invoice_resend"),
    path("credit-notes/<int:pk>/fix/", fix_views.credit_note_fix_page, name="credit_note_fix"),
    path("credit-notes/<int:pk>/cancel/", fix_views.credit_note_cancel_page, name="credit_note_cancel"),
    path("credit-notes/<int:pk>/resend/", fix_views.credit_note_resend_action, name="credit_note_resend"),
    path(
        "credit-allocations/<int:pk>/retry/",
        fix_views.credit_note_allocation_retry_action,
        name="credit_note_allocation_retry",
    ),
    path(
        "credit-allocations/<int:pk>/remove/",
        fix_views.credit_note_allocation_remove_page,
        name="credit_note_allocation_remove",
    ),
    path("batches/<int:pk>/send/", fix_views.batch_send_page, name="batch_send"),
    # Every invoice across batches, filtered and sorted, and its CSV export.
    path("invoices/", list_views.invoice_list_page, name="invoice_list"),
    path("invoices/export.csv", list_views.invoice_export, name="invoice_export"),
]
