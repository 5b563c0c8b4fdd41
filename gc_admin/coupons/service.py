"""The coupons feature's functions under one name: a thin re-export of the sub-packages' services.

The rules live in the sub-packages, each with the same roles (``service`` / ``api`` / ``page`` +
``state``); code in the app imports from them directly:

- :mod:`.catalog` — products (券种);
- :mod:`.stock` — code import (:mod:`.stock.importer` reads the file), stock summary, code list,
  daily expiry, and :func:`~.stock.service.claim_codes`, the one way codes leave stock;
- :mod:`.issuance` — batch issuance (idempotent, never over-issuing) and its preview;
- :mod:`.wallet` — the user's coupons, the use (reveal) flow, reserve/consume/release, staff views;
- :mod:`.purchase` — coupons bought in the mini-program (held by an order, issued on payment).

This module keeps one flat surface for scripts, benches and tests (``service.issue_batch(...)``), and
for callers that use several sub-packages at once (the 工作台 figures, order pricing). Programmes
have their own feature (:mod:`gc_admin.programmes`); their functions are re-exported here too.

Codes leave the package whole only through :func:`use_coupon` (the owner) and
:func:`reveal_stock_code` (staff); both are audited. Everything else shows them masked.
"""

from __future__ import annotations

from gc_admin.coupons.catalog.service import (
    create_product,
    get_by_code,
    get_product_by_code,
    in_programme,
    list_products,
    product_dict,
    product_usage,
    programme_products,
    update_product,
)
from gc_admin.coupons.issuance.service import (
    ISSUANCE_SORT_KEYS,
    IssuancePreview,
    IssuanceResult,
    IssuanceSummary,
    classify_phones,
    coupons_issued_since,
    get_issuance,
    issuable_stock,
    issuance_coupon_states,
    issuances_frame,
    issue_batch,
    list_issuances,
    preview_issuance,
    programme_coupon_counts,
)
from gc_admin.coupons.stock.importer import FileRejected, ParsedFile, end_of_day, expiry_instant, read_codes_file
from gc_admin.coupons.stock.service import (
    STOCK_CODE_SORT_KEYS,
    ExpiryResult,
    ImportReport,
    StockCodeRow,
    SummaryRow,
    get_import,
    import_codes,
    import_report_csv,
    list_imports,
    list_stock_codes,
    reveal_stock_code,
    run_expiry,
    stock_codes_frame,
    stock_summary,
)
from gc_admin.coupons.wallet.service import (
    CouponView,
    StaffCouponView,
    UseResult,
    claim_for_phone,
    consume,
    coupon_history,
    get_user_coupon,
    list_user_coupons,
    release,
    reserve,
    use_coupon,
    user_coupons_for_staff,
)
from gc_admin.programmes.service import create_programme, get_programme, list_programmes

__all__ = [
    "ISSUANCE_SORT_KEYS", "STOCK_CODE_SORT_KEYS", "CouponView", "ExpiryResult", "FileRejected", "ImportReport",
    "IssuancePreview", "IssuanceResult", "IssuanceSummary", "ParsedFile", "StaffCouponView", "StockCodeRow",
    "SummaryRow", "UseResult", "claim_for_phone", "classify_phones", "consume", "coupon_history",
    "coupons_issued_since", "create_product", "create_programme", "end_of_day", "expiry_instant", "get_by_code",
    "get_import", "get_issuance", "get_product_by_code", "get_programme", "get_user_coupon", "import_codes",
    "import_report_csv", "in_programme", "issuable_stock", "issuance_coupon_states", "issuances_frame",
    "issue_batch", "list_imports", "list_issuances", "list_products", "list_programmes", "list_stock_codes",
    "list_user_coupons", "preview_issuance", "product_dict", "product_usage", "programme_coupon_counts",
    "programme_products", "read_codes_file", "release", "reserve", "reveal_stock_code", "run_expiry",
    "stock_codes_frame", "stock_summary", "update_product", "use_coupon", "user_coupons_for_staff",
]
