"""Payments: WeChat Pay notifies, refunds, the ledger (流水), balances and bill reconciliation."""
