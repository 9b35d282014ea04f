from django.urls import path

from invoices import views

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
]
