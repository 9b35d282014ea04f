from django.urls import path

from integrations.signin import views

app_name = "xero_signin"

urlpatterns = [
    path("accounts/xero/sign-in/", views.xero_sign_in, name="sign_in"),
    path("accounts/xero/sign-up/", views.xero_sign_up, name="sign_up"),
    # Must equal XERO_SIGNIN_REDIRECT_URI's path (the default is SITE_URL + this path).
    path("accounts/xero/callback/", views.xero_signin_return, name="callback"),
    path("accounts/xero/sign-up/choose/<uuid:pk>/", views.xero_signup_choice, name="choose"),
    path("accounts/xero/", views.xero_account, name="account"),
    path("accounts/xero/link/", views.xero_link, name="link"),
    path("accounts/xero/unlink/", views.xero_unlink, name="unlink"),
]
