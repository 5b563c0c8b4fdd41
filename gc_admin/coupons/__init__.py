"""Coupons (券): products, code stock and its import, batch issuance, the use flow, expiry.

The public surface is :mod:`gc_admin.coupons.service`; the tables are in :mod:`.models`.
"""
