from django.urls import path

from organisations import views
from organisations.people import views as people_views

app_name = "organisations"

urlpatterns = [
    path("", views.home, name="home"),
    path("organisations/none/", views.no_organisation, name="no_organisation"),
    path("organisations/switch/", views.switch_organisation, name="switch"),
    path("settings/", views.organisation_settings, name="settings"),
    path("settings/people/", people_views.people, name="people"),
    path("settings/people/invite/", people_views.people_invite, name="people_invite"),
    path("settings/people/<int:pk>/role/", people_views.people_role, name="people_role"),
    path("settings/people/<int:pk>/remove/", people_views.people_remove, name="people_remove"),
    path(
        "settings/people/invitations/<int:pk>/withdraw/",
        people_views.people_invitation_revoke,
        name="people_invitation_revoke",
    ),
    path("settings/audit/", people_views.audit, name="audit"),
    path("settings/failure-emails/", people_views.failure_emails, name="failure_emails"),
    # The emailed link: its token names the invitation (only its SHA-256 is stored).
    path("invitations/<str:token>/", people_views.invitation, name="invitation"),
    path("support-requests/new/", views.support_request_new, name="support_request_new"),
]
