import pytest

from integrations.registry import connection_event_emit


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "event,expected", [("reconnected", 1), ("connected", 1), ("needs_reconnect", 0), ("disconnected", 0)]
)
def test_pending_pushes_resume_when_the_connection_comes_back(org_a, enqueued, event, expected):
    connection_event_emit(organisation_id=org_a.pk, event=event)
    assert [(e.name, e.args) for e in enqueued] == [("invoices.tasks.push_organisation", (org_a.pk,))] * expected
