"""SMS: one interface, an outbox that records every message, and vendor senders."""
