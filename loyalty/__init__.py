"""Loyalty points: one programme across partner stores (ledger, balances, spend codes, settlement)."""
