"""Coupons bought in the mini-program: stock held by an order, issued on payment, released or revoked."""
