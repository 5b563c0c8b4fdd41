"""Mini-program users (car owners): WeChat and SMS sign-in, tokens, phone binding (the staff 用户 page is ``gc_admin.customers``)."""
