"""Every table, imported in one place so Alembic and the drift test see the whole schema."""

from sqlmodel import SQLModel

from gc_admin.accounts.models import LoginAttempt, StaffSession, StaffUser
from gc_admin.audit.models import AuditLog
from gc_admin.core.models import ExportJob, TaskRun
from gc_admin.claims.models import Claim, ClaimEvent, ClaimImage, ClaimPayout, ClaimRejectReason, EvOperator
from gc_admin.coupons.models import (
    Coupon,
    CouponPurchaseItem,
    IssuanceBatch,
    IssuanceRow,
    Product,
    StockCode,
    StockImport,
)
from gc_admin.integrations.alipay.models import SimAlipayFault, SimAlipayOrder
from gc_admin.integrations.sms.models import SmsMessage
from gc_admin.orders.aftersales.models import OrderCase, OrderCaseCall
from gc_admin.orders.flowers.models import Bouquet, FlowerDelivery
from gc_admin.orders.drivers.models import Driver, DriverCallback
from gc_admin.orders.imports.models import OrderImport, OrderSourceMapping
from gc_admin.orders.models import OrderChange, OrderEvent, OrderNotice, ServiceOrder
from gc_admin.orders.suppliers.models import Goods, ShipmentImport, Supplier
from gc_admin.partners.models import PartnerKey
from gc_admin.programmes.models import Programme
from gc_admin.payments.models import (
    LedgerEntry,
    Payment,
    PaymentNotifyLog,
    PointsEntry,
    ReconciliationRun,
    Refund,
    StoredValueEntry,
    UserBalance,
)
from gc_admin.users.models import MpUser, SmsLoginCode

metadata = SQLModel.metadata

__all__ = [
    "CouponPurchaseItem", "Driver", "DriverCallback", "LedgerEntry", "OrderCase", "OrderCaseCall", "OrderChange", "OrderEvent", "OrderNotice", "Payment", "PaymentNotifyLog", "PointsEntry",
    "ReconciliationRun", "Refund", "ServiceOrder", "StoredValueEntry", "UserBalance",
    "AuditLog", "Bouquet", "Coupon", "FlowerDelivery", "IssuanceBatch", "IssuanceRow", "LoginAttempt", "MpUser", "PartnerKey", "Product", "Programme",
    "Goods", "OrderImport", "OrderSourceMapping", "ShipmentImport", "Supplier",
    "SimAlipayFault", "SimAlipayOrder", "SmsLoginCode", "SmsMessage", "StaffSession", "StaffUser", "StockCode", "StockImport",
    "ExportJob", "TaskRun", "Claim", "ClaimEvent", "ClaimImage", "ClaimPayout", "ClaimRejectReason", "EvOperator", "metadata",
]
