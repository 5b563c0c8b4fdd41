"""Mini-program users (car owners): WeChat and SMS sign-in, phone binding, the users page."""
