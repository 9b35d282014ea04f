"""xero_sandbox: a faithful local imitation of Xero's identity, Accounting API and webhooks.

Run it with ``python -m xero_sandbox``; see docs/sandbox.md. It imports nothing from the product.
"""

__version__ = "1.0.0"
