"""The HTTP API (FastAPI) mounted into the Reflex app: wiring only.

Routes live in each feature's ``api.py``; this module assembles them under ``/api/v1``,
installs the error envelope and the upload size limit (:class:`~gc_admin.core.uploads.UploadSizeLimit`:
a multipart body over ``GC_UPLOAD_MAX_MB`` is refused before it is read), and mounts the protocol
simulators under ``/sim`` when ``GC_ENV`` is dev or test (and the server is not reachable from the
network, see config.py). :func:`with_security_headers` wraps the whole backend, pages included.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp

from gc_admin.config import get_settings
from gc_admin.core.health import report as health_report
from gc_admin.core.http import SecurityHeadersMiddleware, install_error_handlers, websocket_sources
from gc_admin.core.logs import RequestContext
from gc_admin.core.uploads import UploadSizeLimit

API_DESCRIPTION = """
滚财车主权益平台 HTTP API (v1).

* `/api/v1/mp/*` — 小程序用户（Bearer token，由 `/mp/auth/*` 签发）
* `/api/v1/admin/*` — 员工自动化（Bearer token，由 `/admin/auth/login` 签发，按角色校验）
* `/api/v1/partner/*` — 合作方（`X-Api-Key`）
* `/api/v1/pay/*` — 支付回调

Money is integer fen in fields ending `_fen`; times are ISO-8601 with offset. Errors:
`{"error": {"code": "...", "message": "<中文>"}}`.
"""


#: FastAPI's Swagger UI loads its script and styles from this CDN (and its favicon from FastAPI's site).
DOCS_PAGE_SOURCES = {"script-src": ("https://cdn.jsdelivr.net",), "style-src": ("https://cdn.jsdelivr.net",),
                     "img-src": ("https://fastapi.tiangolo.com",)}


def build_api() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="gc_admin API",
        version="1.0",
        description=API_DESCRIPTION,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    install_error_handlers(app)
    # Outermost for every request (the Reflex app, /_upload included, is mounted inside this app).
    app.add_middleware(UploadSizeLimit)
    app.add_middleware(RequestContext)  # outermost: the request id in every log line, X-Request-Id out

    from gc_admin.accounts.api import router as staff_router
    from gc_admin.claims.api import routers as claim_routers
    from gc_admin.coupons.catalog.api import routers as catalog_routers
    from gc_admin.coupons.issuance.api import routers as issuance_routers
    from gc_admin.coupons.stock.api import routers as stock_routers
    from gc_admin.coupons.wallet.api import routers as wallet_routers
    from gc_admin.exports.api import router as exports_router
    from gc_admin.integrations.sms.api import router as sms_router
    from gc_admin.orders.api import routers as order_routers
    from gc_admin.orders.flowers.api import routers as flower_routers
    from gc_admin.orders.drivers.api import routers as driver_routers
    from gc_admin.orders.imports.api import routers as import_routers
    from gc_admin.orders.suppliers.api import routers as goods_routers
    from gc_admin.payments.api import routers as payment_routers
    from gc_admin.tasks import router as jobs_router
    from gc_admin.users.api import router as mp_router

    v1 = APIRouter(prefix="/api/v1")
    coupon_routers = (*catalog_routers, *stock_routers, *issuance_routers, *wallet_routers)
    for r in (mp_router, staff_router, sms_router, *coupon_routers, *order_routers, *flower_routers, *driver_routers,
              *goods_routers, *import_routers, *payment_routers, *claim_routers, jobs_router, exports_router):
        v1.include_router(r)
    app.include_router(v1)

    @app.get("/api/v1/health", tags=["ops"], summary="健康检查（数据库不可用时 503）")
    def health() -> JSONResponse:
        status, body = health_report()
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    if settings.simulators_enabled:
        mount_simulators(app)
    _api_not_found(app)
    return app


def with_security_headers(app: ASGIApp) -> ASGIApp:
    """Wrap the whole backend (this API with the Reflex app mounted inside it: pages, assets,
    events, uploads) in the security headers. The second ``api_transformer`` in gc_admin.py, so it
    sits outside FastAPI's own error middleware and even a 500 carries the headers."""
    settings = get_settings()
    return SecurityHeadersMiddleware(app, https=settings.https, connect_src=websocket_sources(settings.api_url),
                                     page_extra={"/api/docs": DOCS_PAGE_SOURCES})


def _api_not_found(app: FastAPI) -> None:
    """Unknown ``/api/...`` paths answer with the error envelope (not the dashboard's HTML 404):
    405 when the path exists with another method, 404 otherwise. Registered last."""
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    @app.api_route("/api/{rest:path}", methods=methods, include_in_schema=False)
    def api_not_found(request: Request, rest: str) -> None:  # noqa: ARG001
        for route in app.routes:
            if getattr(route, "endpoint", None) is api_not_found:
                continue
            if route.matches(request.scope)[0] == Match.PARTIAL:
                raise HTTPException(405)
        raise HTTPException(404)


def mount_simulators(app: FastAPI) -> None:
    """Protocol-true local stand-ins for WeChat and the SMS vendors (dev/test only)."""
    from gc_admin.integrations.sims import simulators

    sims = simulators()
    app.include_router(sims.wechat_router, prefix="/sim/wechat")
    app.include_router(sims.sms_router, prefix="/sim/sms")
    app.include_router(sims.wxpay_router, prefix="/sim/wechatpay")
    from gc_admin.integrations.driver import setup as driver, simulator as driver_sim
    app.include_router(driver_sim.build_driver_simulator(driver.sim_state()), prefix="/sim/driver")
    app.include_router(sims.alipay_router, prefix="/sim/alipay")
