"""A large data set written with COPY for scale tests (`manage.py seed_scale`, bench/portal_latency.py).

scale.py seeds tenants and their invoices, then the Xero side (xero.py) with its usage and push history (usage.py)
and the support console's people and requests (support.py); copy_writer.py turns rows into COPY input.
"""
