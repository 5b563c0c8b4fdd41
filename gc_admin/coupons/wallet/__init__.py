"""The holder's side of coupons (我的礼券): a user's coupons, the use (reveal) flow, reserve / consume /
release of non-code coupons, and the staff's masked view of someone's coupons."""
