"""The front door (integrations/xero/) imports no task and enqueues nothing: it reports what it saw through
integrations.registry.xero_report, and the services registered from IntegrationsConfig.ready() queue the work."""

import ast
import logging
from pathlib import Path

import pytest
import responses
from celery.app.task import Task
from django.db import transaction

from integrations.models import XeroConnection
from integrations.xero import tokens
from integrations.xero.client import XeroClient
from integrations.xero.exceptions import XeroNeedsReconnect, XeroTenantDisconnected
from tests.factories import make_connection
from tests.integrations.conftest import xero_json

ROOT = Path(__file__).resolve().parents[2]
FRONT_DOOR = ROOT / "integrations" / "xero"
API = "https://api.xero.com/api.xro/2.0"
TOKEN_URL = "https://identity.xero.com/connect/token"


def imported_modules(source: str) -> set[str]:
    """Every module a source imports, as dotted names (`from a import b` counts as both a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def forbidden(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[-1].endswith("tasks") or n in ("coordinoter.queue", "celery")}


def test_no_module_under_integrations_xero_imports_a_tasks_module_when_scanned():
    sample = (
        "from integrations.tasks import x\nfrom integrations.webhooks import tasks\nfrom coordinoter import queue\n"
    )
    assert forbidden(imported_modules(sample)) == {
        "integrations.tasks",
        "integrations.webhooks.tasks",
        "coordinoter.queue",
    }  # the scan can fail
    modules = sorted(FRONT_DOOR.glob("*.py"))
    assert FRONT_DOOR / "client.py" in modules and FRONT_DOOR / "tokens.py" in modules
    offenders = {path.name: sorted(bad) for path in modules if (bad := forbidden(imported_modules(path.read_text())))}
    assert offenders == {}, "the front door reports (integrations.registry.xero_report); services enqueue"


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_403_check_is_queued_when_the_callers_transaction_rolls_back(org_a, enqueued):
    connection = make_connection(organisation=org_a)
    responses.get(f"{API}/Invoices", json=xero_json("authentication_unsuccessful_403.json"), status=403)
    with pytest.raises(XeroTenantDisconnected), transaction.atomic():
        XeroClient(connection.pk).get("/Invoices")
    assert [(e.name, e.args) for e in enqueued] == [("integrations.xero_connection_verify", (connection.pk,))]


@pytest.mark.django_db
@responses.activate
def test_403_is_still_raised_and_logged_when_the_check_cannot_be_queued(org_a, monkeypatch, caplog):
    connection = make_connection(organisation=org_a)
    responses.get(f"{API}/Invoices", json=xero_json("authentication_unsuccessful_403.json"), status=403)

    def broker_down(self, *args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(Task, "apply_async", broker_down)
    with caplog.at_level(logging.ERROR), pytest.raises(XeroTenantDisconnected):
        XeroClient(connection.pk).get("/Invoices")
    assert [r.msg for r in caplog.records] == ["xero.connection.check_not_queued"]


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_admins_notify_is_queued_only_after_commit_when_a_grant_dies(org_a, enqueued):
    connection = make_connection(organisation=org_a, expires_in=0)
    responses.post(TOKEN_URL, json=xero_json("invalid_grant.json"), status=400)
    with pytest.raises(XeroNeedsReconnect), transaction.atomic():
        tokens.access_token_get(connection_id=connection.pk)
    # The needs_reconnect move commits inside the token store's own transaction, which the caller's rolled back.
    assert XeroConnection.objects.get(pk=connection.pk).status == "active"
    assert enqueued.names() == []
    with pytest.raises(XeroNeedsReconnect):
        tokens.access_token_get(connection_id=connection.pk)
    assert XeroConnection.objects.get(pk=connection.pk).status == "needs_reconnect"
    assert [(e.name, e.args) for e in enqueued] == [
        ("integrations.xero_admins_notify", (connection.pk, "needs_reconnect"))
    ]
