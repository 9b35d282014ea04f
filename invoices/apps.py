from django.apps import AppConfig

# Connection events after which invoices that waited (pending) can go out at once, not at the next sweep.
RESUME_EVENTS = frozenset({"connected", "reconnected", "tenant_switched"})


def _resume_pending_pushes(organisation_id: int, event: str) -> None:
    if event == "tenant_switched":
        # Before the push resumes: the old organisation's ContactIDs would fail every invoice in the new one.
        from invoices.services.tenant import customers_forget_xero_contacts

        customers_forget_xero_contacts(organisation_id=organisation_id)
    if event in RESUME_EVENTS:
        from invoices.services.push import push_enqueue_for_organisation

        push_enqueue_for_organisation(organisation_id=organisation_id)


class InvoicesConfig(AppConfig):
    name = "invoices"
    verbose_name = "Invoices"

    def ready(self) -> None:
        from integrations.registry import register_connection_listener

        register_connection_listener(_resume_pending_pushes)

        from invoices.outbound import changes, chunks, contacts, credit_notes

        changes.register()
        chunks.register()
        contacts.register()

        from invoices.first_run import mapping_next_step_banners
        from organisations.banners import register_banner_provider

        register_banner_provider(mapping_next_step_banners)
        credit_notes.register()
