"""Designated driver (代驾): the driver roster, dispatch (own driver or a third-party platform), the fee."""
