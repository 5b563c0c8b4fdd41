"""Coupons (券): products, code stock and its import, batch issuance, the holder's use flow, coupons
bought in the mini-program, expiry.

Every coupon table is in :mod:`.models`; the capabilities are sub-packages with the same roles
(``service`` / ``api`` / ``page`` + ``state``): :mod:`.catalog`, :mod:`.stock`, :mod:`.issuance`,
:mod:`.wallet`, :mod:`.purchase`. :mod:`.service` re-exports their functions under one name.
"""
