"""Batch issuance (发券): coupons of a product to a list of phones, idempotent by batch id, never
over-issuing; the phone lists it reads (:mod:`.files`); the 发券 page."""
