"""What every feature shares: money, phones, time, errors, security, roles."""
