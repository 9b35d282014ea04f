"""Thin tasks: load by id, call one service. Everything here runs on the `xero` queue."""

from celery import shared_task

from invoices.services import push


@shared_task(acks_late=True)
def push_organisation(*, organisation_id: int) -> None:
    push.push_organisation_dispatch(organisation_id=organisation_id)
