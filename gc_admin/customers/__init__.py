"""用户: a member's 360° view for staff — their coupons now, orders and claims later.

Built on the features it shows (users for the identity, coupons, ...), so it sits above them; the
identity itself (accounts of car owners, sign-in, tokens, binding) stays in ``gc_admin.users``.
"""
