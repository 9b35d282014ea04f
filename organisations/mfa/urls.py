from django.urls import path

from organisations.mfa import views

app_name = "mfa"

urlpatterns = [
    path("accounts/mfa/verify/", views.verify, name="verify"),
    path("accounts/mfa/enrol/", views.enrol, name="enrol"),
]
