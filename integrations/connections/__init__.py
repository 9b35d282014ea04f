"""A Xero connection's life after the OAuth round trip: its status machine (states.py), the disconnect steps as
outbound operations (disconnect.py), and what the services do when the front door reports something (reports.py).
"""
