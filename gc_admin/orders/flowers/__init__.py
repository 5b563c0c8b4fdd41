"""鲜花配送: the bouquet catalogue (with photos), delivery slots, and the deliveries booked in them."""
