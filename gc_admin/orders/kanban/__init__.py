"""订单看板: the board's queries (:mod:`.service`), its Reflex state (:mod:`.state`)."""
