# batches.py: create batches (form and CSV); mapping.py: the organisation's Xero defaults;
# push.py: the push pipeline (claim, send, record, retry); apply.py: changes that came from Xero.
