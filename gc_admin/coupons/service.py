"""The coupons feature's public surface: import everything from here.

Plain functions, session first, keyword-only arguments after; they never commit (the caller's
:func:`gc_admin.db.session_scope` does) and raise typed :class:`~gc_admin.core.errors.DomainError`s
with Chinese messages. The work is split by topic:

- :mod:`.products` — programmes and products (券种);
- :mod:`.stock` — code import (:mod:`.importer` reads the file), stock summary, code list, daily expiry;
- :mod:`.issuance` — batch issuance (idempotent, never over-issuing) and its preview;
- :mod:`.wallet` — the user's coupons, the use (reveal) flow, reserve/consume/release, staff views.

Codes leave this package whole only through :func:`use_coupon` (the owner) and
:func:`reveal_stock_code` (staff); both are audited. Everything else shows them masked.
"""

from __future__ import annotations

from gc_admin.coupons.importer import FileRejected, ParsedFile, end_of_day, expiry_instant, read_codes_file
from gc_admin.coupons.issuance import (
    IssuancePreview,
    IssuanceResult,
    IssuanceSummary,
    classify_phones,
    coupons_issued_since,
    get_issuance,
    issuable_stock,
    issuance_coupon_states,
    issue_batch,
    list_issuances,
    preview_issuance,
    programme_coupon_counts,
)
from gc_admin.coupons.products import (
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
from gc_admin.programmes.service import create_programme, get_programme, list_programmes
from gc_admin.coupons.stock import (
    ExpiryResult,
    ImportPage,
    ImportReport,
    StockCodePage,
    StockCodeRow,
    SummaryRow,
    get_import,
    import_codes,
    import_report_csv,
    list_imports,
    list_stock_codes,
    reveal_stock_code,
    run_expiry,
    stock_summary,
)
from gc_admin.coupons.wallet import (
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
# the lists' sort keys and Excel exports (pages 券库存 and 发券)
from gc_admin.coupons.issuance import ISSUANCE_SORT_KEYS, issuances_frame
from gc_admin.coupons.stock import STOCK_CODE_SORT_KEYS, stock_codes_frame

__all__ = [
    "CouponView", "ExpiryResult", "FileRejected", "ImportPage", "ImportReport", "IssuancePreview", "IssuanceResult",
    "IssuanceSummary", "ParsedFile", "StaffCouponView", "StockCodePage", "StockCodeRow", "SummaryRow", "UseResult",
    "claim_for_phone", "classify_phones", "consume", "coupon_history", "coupons_issued_since", "create_product",
    "create_programme", "end_of_day", "expiry_instant", "get_by_code", "get_import", "get_issuance",
    "get_product_by_code", "get_programme", "get_user_coupon", "import_codes", "import_report_csv", "in_programme",
    "issuable_stock", "issuance_coupon_states", "issue_batch", "list_imports", "list_issuances", "list_products",
    "list_programmes", "list_stock_codes", "list_user_coupons", "preview_issuance", "product_dict", "product_usage",
    "programme_coupon_counts", "programme_products", "read_codes_file", "release", "reserve", "reveal_stock_code",
    "run_expiry", "stock_summary", "update_product", "use_coupon", "user_coupons_for_staff",
]
__all__ += ["ISSUANCE_SORT_KEYS", "STOCK_CODE_SORT_KEYS", "issuances_frame", "stock_codes_frame"]
