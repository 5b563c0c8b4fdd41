"""Programmes (项目): an insurer's benefits programme, the scope insurer staff, partner keys and
programme products act in. Below accounts, partners and coupons, which all refer to it."""
