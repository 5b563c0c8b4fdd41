"""Staff accounts, roles, sign-in sessions and sign-in throttling."""
