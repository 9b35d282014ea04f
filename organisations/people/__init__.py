"""People of an organisation: models.py (Invitation, OrganisationAuditEvent, SupportReply, registered in the
organisations app), services.py (invite, accept, change a role, remove), forms.py and views.py (Settings > People,
the audit trail, failure emails, the invitation link). Import from the module you need."""
