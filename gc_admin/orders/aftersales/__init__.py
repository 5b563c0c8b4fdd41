"""售后 (after-sales cases) on service orders: see :mod:`.service`."""
