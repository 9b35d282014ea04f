"""The outbound engine: every write to Xero is a stored operation run by one claim -> decide -> call -> record loop.

models.py (OutboundOperation, OutboundAttempt), states.py (the operation's transition table), kinds.py (the
strategies each kind of write supplies), engine.py (the loop), tasks.py (thin tasks and the sweep).
"""
