from django.urls import path

from invoices import views

app_name = "invoices"

urlpatterns = [
    path("portal/", views.dashboard, name="dashboard"),
    path("batches/", views.batches, name="batch_list"),
    path("batches/<int:pk>/", views.batch_detail, name="batch_detail"),
]
