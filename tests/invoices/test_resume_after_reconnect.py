from unittest import mock

import pytest

from integrations.registry import connection_event_emit


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "event,expected", [("reconnected", 1), ("connected", 1), ("needs_reconnect", 0), ("disconnected", 0)]
)
def test_pending_pushes_resume_when_the_connection_comes_back(org_a, event, expected):
    with mock.patch("invoices.services.push.push_enqueue_for_organisation") as enqueue:
        connection_event_emit(organisation_id=org_a.pk, event=event)
    assert enqueue.call_count == expected
    if expected:
        enqueue.assert_called_with(organisation_id=org_a.pk)
