"""Append-only audit log: who did what, when, before/after."""
