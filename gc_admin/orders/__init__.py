"""Service orders: one order model for every type, pricing, the state machine, expiry, staff notices."""
