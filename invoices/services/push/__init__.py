"""The push pipeline: every pending invoice of an eligible batch becomes one Xero invoice, exactly once.

    dispatch.py  one dispatcher per tenant: make sure customers are Xero contacts, claim up to 50 pending
                 invoices per chunk (at most 5 chunks of a tenant in flight), store payload and key, enqueue
    contacts.py  customers -> Xero contacts: found by ContactNumber, then by Name, else created in bulk
    send.py      one chunk (an outbound operation of kind invoice_chunk, invoices/outbound/chunks.py) through the
                 engine's loop: the kind's calls (PUT /Invoices, the lookup) and record (every element and attempt);
                 retry with the same key inside Xero's window, look the numbers up after it
    record.py    Xero's answers: every element of a PUT, what a lookup found, the chunk's next state
    attempts.py  calls without an answer to record: the attempt row, then retry later, abandon or refused
    outcomes.py  each invoice's outcome fields (one statement per chunk), its history rows, last sync time
    sweep.py     the beat sweeper: expired leases, lost reschedules, tenants with pending work and nothing moving
    retry.py     an accountant retries failed invoices (who retried is recorded)

Invoice.sync_state: pending -> in_flight -> synced | warning | failed; in_flight -> pending when a lookup shows
the invoice is not in Xero, or when a call that wrote nothing is abandoned (disconnected, needs reconnect). Every
write of it goes through invoices/sync_states.py, which holds the whole table.
A chunk's state is the outbound operation's (integrations/outbound/states.py): pending -> sending -> done | refused
(Xero refused the whole request; or released, nothing written, when the connection became unusable) |
needs_attention (its invoices' outcome could not be confirmed); sending -> pending to wait (backoff, rate limit).
"""

from invoices.services.push.dispatch import push_enqueue_for_organisation, push_organisation_dispatch
from invoices.services.push.retry import invoices_retry_failed
from invoices.services.push.send import push_chunk_send
from invoices.services.push.sweep import push_sweep

__all__ = [
    "invoices_retry_failed",
    "push_chunk_send",
    "push_enqueue_for_organisation",
    "push_organisation_dispatch",
    "push_sweep",
]
