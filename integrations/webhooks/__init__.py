"""Xero's webhooks: the receiver, the inbox and its processing (docs/architecture.md, "Two-way sync").

receive.py   the one webhook URL: size, signature over the raw body, parse, record, empty 200
parse.py     a signed delivery's events, each made storable, with the reason when one cannot be used
record.py    store the events once each; queue their tenants for processing after the commit
process.py   one tenant's inbox: claim, fetch (paced), apply, record each event's outcome
fetch.py     GET what events name from Xero; hand it to the invoices app's appliers (settings)
sweep.py     enqueue tenants nobody is processing, purge old events, support's retry of failed ones
models.py    WebhookEvent (the inbox) and ReconciliationState (app_label "integrations")
selectors.py the support console's reads; support.py its views; tasks.py and urls.py

Kept light: integrations/models.py imports models.py from here while Django loads the models.
"""
