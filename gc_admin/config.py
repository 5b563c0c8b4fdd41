"""Settings, read from the environment in one place.

Every setting has a documented default that is safe for a developer's machine (SQLite,
local protocol simulators, an SMS outbox instead of a real SMS provider). In production
(``GC_ENV=prod``) the demo defaults for secrets are refused: :func:`get_settings` raises
:class:`ConfigError` listing every missing or demo value, so the app does not start with them.

| variable | default | meaning |
|---|---|---|
| GC_ENV | dev | dev, test or prod. Simulators under /sim and the SMS outbox API exist only in dev/test |
| GC_HOST | 127.0.0.1 (dev/test), 0.0.0.0 (prod) | address the server binds to (``REFLEX_BACKEND_HOST`` may say the same, not otherwise) |
| GC_ALLOW_SIMULATORS | 0 | dev/test bound beyond loopback: 1 mounts /sim anyway (anyone who reaches the port can then mint WeChat identities and fake payments); without it such a start is refused while an integration is ``local`` |
| GC_DATABASE_URL | sqlite:///<project>/data/gc_admin.db | SQLAlchemy URL; ``postgresql+psycopg://...`` for PostgreSQL |
| GC_REDIS_URL | (none) | ``redis://host:6379/0``: Reflex's state manager (rxconfig.py), required for more than one worker |
| GC_WORKERS | Reflex's own (1 without Redis, cpu x 2 + 1 with it) | backend worker processes per host (``GRANIAN_WORKERS``); > 1 needs GC_REDIS_URL |
| GC_TRUSTED_PROXIES | (none) | comma-separated addresses of the reverse proxies (nginx) whose ``X-Forwarded-For`` names the caller (throttles count per caller address) |
| GC_LOG_FORMAT | json (prod), text (dev/test) | ``json``: one JSON object per line with the request id; ``text``: plain lines |
| GC_SECRET_KEY | (demo value) | signs mini-program tokens; must be set (>= 32 chars) in prod |
| GC_PORT | 8000 | port the app serves pages and API on |
| GC_PUBLIC_URL | http://localhost:<port> | origin staff use; the default CORS origin. ``https://...`` turns on HSTS and the staff cookie's ``Secure`` |
| REFLEX_API_URL | GC_PUBLIC_URL | where the browser opens the websocket (Reflex reads it too; set it behind a proxy) |
| GC_CORS_ORIGINS | GC_PUBLIC_URL (dev/test: + the loopback aliases and this machine's name on the port) | comma-separated browser origins allowed to call the API with credentials and to open the dashboard's websocket |
| GC_STAFF_SESSION_HOURS | 12 | staff sign-in lifetime |
| GC_MP_TOKEN_MINUTES | 120 | mini-program token lifetime |
| GC_LOGIN_MAX_FAILURES | 5 | failed staff sign-ins per username within the window before it is locked |
| GC_LOGIN_WINDOW_MINUTES | 15 | throttling window for failed sign-ins |
| GC_WECHAT_BASE_URL | local | WeChat API origin; ``local`` = the in-process simulator (dev/test only) |
| GC_WECHAT_APPID / GC_WECHAT_SECRET | demo values | mini-program credentials |
| GC_SMS_PROVIDER | outbox | outbox (dev: record only), aliyun or tencent |
| GC_SMS_ALIYUN_* | | ACCESS_KEY_ID, ACCESS_KEY_SECRET, SIGN_NAME, ENDPOINT (default https://dysmsapi.aliyuncs.com), TEMPLATE_<NAME> |
| GC_SMS_TENCENT_* | | SECRET_ID, SECRET_KEY, SDK_APP_ID, SIGN_NAME, REGION, ENDPOINT (default https://sms.tencentcloudapi.com), TEMPLATE_<NAME> |
| GC_UPLOAD_DIR | <project>/data/uploads | private uploads (never served statically) |
| GC_WXPAY_BASE_URL | local | WeChat Pay API origin; ``local`` = the in-process simulator with throwaway keys (dev/test only) |
| GC_WXPAY_MCHID | 1900000001 (demo) | merchant id |
| GC_WXPAY_APPID | GC_WECHAT_APPID | the mini-program's appid for payments |
| GC_WXPAY_MERCHANT_KEY_PATH / GC_WXPAY_MERCHANT_SERIAL_NO | | merchant API private key (PEM file) and its certificate serial |
| GC_WXPAY_APIV3_KEY | | the 32-byte APIv3 key (decrypts notifies) |
| GC_WXPAY_PUBLIC_KEY_PATH / GC_WXPAY_PUBLIC_KEY_ID | | WeChat Pay public key (PEM file) and its id ``PUB_KEY_ID_...`` |
| GC_WXPAY_NOTIFY_URL | <public>/api/v1/pay/wechat/notify | where WeChat Pay posts payment results (refunds: .../refund-notify) |
| GC_WXPAY_DEV_KEYS | <project>/data/wxpay_dev_keys.json | throwaway key set shared by the local client and simulator |
| GC_SIM_REFUND_SECONDS | 3 (dev), off (test/prod) | the dev WeChat Pay simulator finishes each refund by itself after this delay (SUCCESS + signed notify), as WeChat does |
| GC_ALIPAY_GATEWAY | local (dev/test), empty = off (prod) | Alipay open-API ``gateway.do`` URL for cashback transfers; ``local`` = the in-process simulator with throwaway certificates (dev/test only) |
| GC_ALIPAY_APP_ID | 2021000000000000 (demo) | the Alipay application's id |
| GC_ALIPAY_APP_PRIVATE_KEY_PATH / GC_ALIPAY_APP_CERT_PATH | | the application's RSA private key (PEM) and ``appCertPublicKey_<appid>.crt`` |
| GC_ALIPAY_CERT_PATH / GC_ALIPAY_ROOT_CERT_PATH | | ``alipayCertPublicKey_RSA2.crt`` and ``alipayRootCert.crt`` (certificate mode) |
| GC_ALIPAY_TIMEOUT_SECONDS | 15 | one transfer or query exchange; an exchange that times out is an unknown outcome, queried before any retry |
| GC_ALIPAY_DEV_CERTS | <project>/data/alipay_dev_certs.json | throwaway certificates shared by the local client and simulator |
| GC_ORDER_UNPAID_MINUTES | 30 | an unpaid order is closed at WeChat Pay and cancelled after this long (its reservations released) |
| GC_ORDER_LEASE_MINUTES | 15 | how long a clerk's claim on an order (认领 / 下一单) keeps other clerks off it; it lapses by itself |
| GC_ORDER_SLA_MINUTES | coupon_purchase=10,flower=120,topup=30,driver=30,goods=2880 | per type: time from payment the kanban's SLA timer allows (amber from 80 %, red past it) |
| GC_DRIVER_PLATFORM_URL | local | third-party designated-driver platform API origin; ``local`` = the simulator under /sim/driver (dev/test only) |
| GC_DRIVER_PLATFORM_CODE / _KEY / _SECRET | edaijia / demo values | its code in ``/api/v1/driver/{code}/callback``, our app key and the HMAC secret (both ways) |
| GC_ONDUTY_PHONES | (empty) | comma-separated phones told of new paid orders by SMS; empty = enabled clerks with a phone |
| GC_TASKS_HEARTBEAT_SECONDS | 10 | a task worker's heartbeat; a worker silent for 3 beats is dead and its running job is queued again |
| GC_TASKS_EVERY_SECONDS | 0 | dev/test only: run every periodic task every N seconds (1-59) instead of its own schedule |
| GC_TASKS_EXTRA_MODULES | (empty) | dev/test only: comma-separated modules that register more tasks (tests' blocking task) |
| GC_UPLOAD_MAX_MB | 50 | any uploaded file (stock codes, issuance phones, trade bills, every later upload); bigger request bodies are refused before they are read |
| GC_UPLOAD_MAX_ROWS | 1048576 | lines of a CSV/TXT, rows of a worksheet (Excel's own limit) |
| GC_UPLOAD_MAX_COLUMNS | 1024 | columns of any CSV line or worksheet (counted without regard to quotes: an upper bound) |
| GC_UPLOAD_MAX_CELLS | 10000000 | rows x columns a parser would allocate: a worksheet's used range, or a CSV's lines x its widest header line |
| GC_UPLOAD_MAX_LINE_KB | 64 | one line of a CSV/TXT, in bytes |
| GC_UPLOAD_XLSX_MAX_ENTRIES | 1000 | parts (zip entries) of an .xlsx |
| GC_UPLOAD_XLSX_MAX_ENTRY_MB | 200 | one part of an .xlsx, uncompressed |
| GC_UPLOAD_XLSX_MAX_TOTAL_MB | 300 | all parts of an .xlsx uncompressed; also what one worksheet may expand to with its shared strings |
| GC_UPLOAD_XLSX_MAX_RATIO | 100 | compression ratio of one part over 1 MB uncompressed (real sheets: 5-20) |
| GC_UPLOAD_IMAGE_MAX_MB | 10 | one uploaded image (bouquet photos, receipts), before it is decoded |
| GC_UPLOAD_IMAGE_MAX_PIXELS | 40000000 | width x height an uploaded image may declare (checked from its header, before decoding) |
| GC_FLOWER_OPEN / GC_FLOWER_CLOSE | 09:00 / 21:00 | flower delivery hours (Asia/Shanghai): hourly slots start from OPEN, the last one ends at CLOSE |
| GC_FLOWER_LEAD_MINUTES | 120 | a slot can be booked only if it starts at least this long from now |
| GC_FLOWER_SLOT_CAPACITY | 5 | live flower orders one city's slot takes (cancelled and refunded ones free their place) |
| GC_FLOWER_DAYS_AHEAD | 14 | how many days ahead slots can be booked |

Upload limits are checked by :mod:`gc_admin.core.uploads` from the bytes and the zip metadata before any
parser runs (see there).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import ipaddress
import os
import socket
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEMO_SECRET_KEY = "demo-secret-key-not-for-production-use-0000"
DEMO_WECHAT_APPID = "wxdemo0000000000"
DEMO_WECHAT_SECRET = "demo-wechat-secret"
DEMO_WXPAY_MCHID = "1900000001"
DEMO_DRIVER_KEY, DEMO_DRIVER_SECRET = "demo-driver-key", "demo-driver-secret-not-for-production"
DEMO_CLAIMS_KEY = "ZGVtby1jbGFpbXMta2V5LW5vdC1mb3ItcHJvZCEhISE="  # base64 of 32 bytes; refused in prod
DEMO_ALIPAY_APP_ID = "2021000000000000"

ENVS = ("dev", "test", "prod")
SMS_PROVIDERS = ("outbox", "aliyun", "tencent")


class ConfigError(RuntimeError):
    """The environment does not describe a runnable configuration."""


@dataclasses.dataclass(frozen=True)
class SmsVendorSettings:
    key_id: str = ""
    key_secret: str = ""
    sign_name: str = ""
    endpoint: str = ""
    region: str = ""
    app_id: str = ""
    templates: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class WxPaySettings:
    base_url: str
    mchid: str
    appid: str
    merchant_key_path: str
    merchant_serial_no: str
    apiv3_key: str
    public_key_path: str
    public_key_id: str
    notify_url: str
    refund_notify_url: str
    dev_keys_path: Path


@dataclasses.dataclass(frozen=True)
class AlipaySettings:
    gateway: str = ""  # "" = no Alipay transfers, "local" = the simulator
    app_id: str = DEMO_ALIPAY_APP_ID
    app_private_key_path: str = ""
    app_cert_path: str = ""
    alipay_cert_path: str = ""
    alipay_root_cert_path: str = ""
    timeout_seconds: int = 15
    dev_certs_path: Path = PROJECT_ROOT / "data" / "alipay_dev_certs.json"


@dataclasses.dataclass(frozen=True)
class UploadLimits:
    """What an uploaded file may be (``GC_UPLOAD_*``; enforced by :mod:`gc_admin.core.uploads`)."""

    max_bytes: int = 50 * 1024 * 1024
    max_rows: int = 1_048_576
    max_columns: int = 1024
    max_cells: int = 10_000_000
    max_line_bytes: int = 64 * 1024
    xlsx_max_entries: int = 1000
    xlsx_max_entry_bytes: int = 200 * 1024 * 1024
    xlsx_max_total_bytes: int = 300 * 1024 * 1024
    xlsx_max_ratio: int = 100
    image_max_bytes: int = 10 * 1024 * 1024
    image_max_pixels: int = 40_000_000


@dataclasses.dataclass(frozen=True)
class FlowerSettings:
    """Flower delivery slots (``GC_FLOWER_*``): hourly, inside opening hours, with a lead time and a capacity."""

    open_hour: int = 9
    close_hour: int = 21
    lead_minutes: int = 120
    slot_capacity: int = 5
    days_ahead: int = 14


DEFAULT_ORDER_SLA = (("coupon_purchase", 10), ("flower", 120), ("topup", 30), ("driver", 30), ("goods", 2880))


@dataclasses.dataclass(frozen=True)
class ClaimsSettings:
    """Cashback claims (``GC_CLAIMS_*``): the account-encryption key, where receipts are stored, four eyes."""

    key_b64: str = DEMO_CLAIMS_KEY  # AES-256-GCM key for payout accounts, base64 of 32 bytes
    storage: str = ""  # "" = local directory ``data/claims``; a path; or ``s3://bucket[/prefix]``
    s3_endpoint: str = ""  # S3-compatible endpoint URL (credentials from the usual AWS_* variables)
    four_eyes_fen: int = 10000  # payouts above this need a second approver
    four_eyes_nth: int = 3  # ... and so does a user's Nth (and later) payout in a calendar month
    image_max_bytes: int = 8 * 1024 * 1024
    image_max_pixels: int = 40_000_000
    ocr_after_response: bool = False  # also read a claim's receipts in the web process after it answers (the queue always does)


@dataclasses.dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    secret_key: str
    port: int
    public_url: str
    cors_origins: tuple[str, ...]
    staff_session_hours: int
    mp_token_minutes: int
    login_max_failures: int
    login_window_minutes: int
    wechat_base_url: str
    wechat_appid: str
    wechat_secret: str
    sms_provider: str
    sms_aliyun: SmsVendorSettings
    sms_tencent: SmsVendorSettings
    upload_dir: Path
    wxpay: WxPaySettings
    order_unpaid_minutes: int = 30
    onduty_phones: tuple[str, ...] = ()
    order_lease_minutes: int = 15
    order_sla_minutes: tuple[tuple[str, int], ...] = DEFAULT_ORDER_SLA
    host: str = "127.0.0.1"
    allow_simulators: bool = False
    api_url: str = ""
    uploads: UploadLimits = UploadLimits()
    redis_url: str = ""
    workers: int | None = None  # None: Reflex decides (see GC_WORKERS)
    log_format: str = "text"
    trusted_proxies: frozenset[str] = frozenset()
    flowers: FlowerSettings = FlowerSettings()
    driver_platform: tuple[str, str, str, str] = ("local", "edaijia", DEMO_DRIVER_KEY, DEMO_DRIVER_SECRET)  # url, code, key, secret
    claims: ClaimsSettings = ClaimsSettings()
    alipay: AlipaySettings = AlipaySettings()
    sim_refund_seconds: float | None = None  # dev: the WeChat Pay simulator finishes refunds by itself
    tasks_heartbeat_seconds: int = 10
    tasks_every_seconds: int = 0
    tasks_extra_modules: str = ""
    tasks_wait_seconds: int = 300  # how long a request waits for the task doing its work (import) before a 202

    @property
    def loopback_only(self) -> bool:
        """Whether the server listens on a loopback address only (nobody else can reach it)."""
        return _is_loopback(self.host)

    @property
    def simulators_enabled(self) -> bool:
        """Local protocol simulators are mounted only outside production, and only on a server
        nobody else can reach unless ``GC_ALLOW_SIMULATORS`` says so."""
        return self.env in ("dev", "test") and (self.loopback_only or self.allow_simulators)

    @property
    def self_url(self) -> str:
        """Where this process reaches its own server (the in-app clients of the simulators)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://{_url_host(host)}:{self.port}"

    @property
    def https(self) -> bool:
        """Staff reach the app over HTTPS (HSTS, ``Secure`` cookies)."""
        return self.public_url.lower().startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _is_loopback(host: str) -> bool:
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    """``host`` as it goes in a URL (IPv6 literals in brackets)."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host.strip("[]")).version == 6 else host
    except ValueError:
        return host


def _machine_names() -> list[str]:
    """This machine's host name (and fully qualified name), lower-case."""
    names = [socket.gethostname()]
    try:
        names.append(socket.getfqdn())
    except OSError:  # pragma: no cover - resolver trouble: the short name is enough
        pass
    return [n.lower() for n in names if n and n.lower() != "localhost"]


def _dev_origins(port: int) -> list[str]:
    """Origins a developer opens the dev app at: the loopback aliases and this machine's name."""
    hosts = ["localhost", "127.0.0.1", "[::1]", *_machine_names()]
    return [f"http://{h}:{port}" for h in hosts]


def _bool(env: dict[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


def _host(env: dict[str, str], gc_env: str) -> str:
    """The bind address: GC_HOST, else Reflex's own REFLEX_BACKEND_HOST, else loopback in
    dev/test and every interface in prod. Reflex binds to REFLEX_BACKEND_HOST when it is set, so
    a GC_HOST that contradicts it would make the settings lie about who can reach the server."""
    gc_host = env.get("GC_HOST", "").strip()
    reflex_host = env.get("REFLEX_BACKEND_HOST", "").strip()
    if gc_host and reflex_host and gc_host != reflex_host:
        raise ConfigError(f"GC_HOST={gc_host} contradicts REFLEX_BACKEND_HOST={reflex_host}: set only GC_HOST")
    return gc_host or reflex_host or ("0.0.0.0" if gc_env == "prod" else "127.0.0.1")


def _sla(raw: str) -> tuple[tuple[str, int], ...]:
    """``GC_ORDER_SLA_MINUTES`` (``flower=120,topup=30``) over the defaults; a bad entry is a startup error."""
    out = dict(DEFAULT_ORDER_SLA)
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        name, _, minutes = part.partition("=")
        if name.strip() not in out or not minutes.strip().isdigit():
            raise ValueError(f"GC_ORDER_SLA_MINUTES: expected type=minutes with a known type, got {part!r}")
        out[name.strip()] = int(minutes)
    return tuple(out.items())


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _vendor(env: dict[str, str], prefix: str, endpoint: str) -> SmsVendorSettings:
    templates = {
        k[len(prefix) + len("TEMPLATE_"):].lower(): v
        for k, v in env.items()
        if k.startswith(prefix + "TEMPLATE_")
    }
    return SmsVendorSettings(
        key_id=env.get(prefix + "ACCESS_KEY_ID", env.get(prefix + "SECRET_ID", "")),
        key_secret=env.get(prefix + "ACCESS_KEY_SECRET", env.get(prefix + "SECRET_KEY", "")),
        sign_name=env.get(prefix + "SIGN_NAME", ""),
        endpoint=env.get(prefix + "ENDPOINT", endpoint),
        region=env.get(prefix + "REGION", "ap-guangzhou"),
        app_id=env.get(prefix + "SDK_APP_ID", ""),
        templates=templates,
    )


def _upload_limits(env: dict[str, str]) -> UploadLimits:
    d, mb = UploadLimits(), 1024 * 1024
    return UploadLimits(
        max_bytes=_int(env, "GC_UPLOAD_MAX_MB", d.max_bytes // mb) * mb,
        max_rows=_int(env, "GC_UPLOAD_MAX_ROWS", d.max_rows),
        max_columns=_int(env, "GC_UPLOAD_MAX_COLUMNS", d.max_columns),
        max_cells=_int(env, "GC_UPLOAD_MAX_CELLS", d.max_cells),
        max_line_bytes=_int(env, "GC_UPLOAD_MAX_LINE_KB", d.max_line_bytes // 1024) * 1024,
        xlsx_max_entries=_int(env, "GC_UPLOAD_XLSX_MAX_ENTRIES", d.xlsx_max_entries),
        xlsx_max_entry_bytes=_int(env, "GC_UPLOAD_XLSX_MAX_ENTRY_MB", d.xlsx_max_entry_bytes // mb) * mb,
        xlsx_max_total_bytes=_int(env, "GC_UPLOAD_XLSX_MAX_TOTAL_MB", d.xlsx_max_total_bytes // mb) * mb,
        xlsx_max_ratio=_int(env, "GC_UPLOAD_XLSX_MAX_RATIO", d.xlsx_max_ratio),
        image_max_bytes=_int(env, "GC_UPLOAD_IMAGE_MAX_MB", d.image_max_bytes // mb) * mb,
        image_max_pixels=_int(env, "GC_UPLOAD_IMAGE_MAX_PIXELS", d.image_max_pixels),
    )


def _hour(env: dict[str, str], name: str, default: int) -> int:
    """A whole hour ``HH:00`` (or ``HH``) from the environment, 0-24."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    hh, _, mm = raw.partition(":")
    if not hh.isdigit() or mm not in ("", "00") or not 0 <= int(hh) <= 24:
        raise ConfigError(f"{name} must be a whole hour such as 09:00, got {raw!r}")
    return int(hh)


def _flower_settings(env: dict[str, str]) -> FlowerSettings:
    d = FlowerSettings()
    return FlowerSettings(open_hour=_hour(env, "GC_FLOWER_OPEN", d.open_hour),
                          close_hour=_hour(env, "GC_FLOWER_CLOSE", d.close_hour),
                          lead_minutes=_int(env, "GC_FLOWER_LEAD_MINUTES", d.lead_minutes),
                          slot_capacity=_int(env, "GC_FLOWER_SLOT_CAPACITY", d.slot_capacity),
                          days_ahead=_int(env, "GC_FLOWER_DAYS_AHEAD", d.days_ahead))


def _sim_refund_seconds(env: dict[str, str], gc_env: str) -> float | None:
    """GC_SIM_REFUND_SECONDS: after how long the dev WeChat Pay simulator finishes a refund by itself (3 s in
    dev, off in test so tests finish refunds when they choose); 0 or empty turns it off."""
    raw = env.get("GC_SIM_REFUND_SECONDS", "3" if gc_env == "dev" else "").strip()
    try:
        seconds = float(raw) if raw else 0.0
    except ValueError:
        return -1.0  # refused by validate()
    return seconds or None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from an environment mapping and validate them."""
    env = dict(os.environ if env is None else env)
    gc_env = env.get("GC_ENV", "dev").strip().lower()
    if gc_env not in ENVS:
        raise ConfigError(f"GC_ENV must be one of {ENVS}, got {gc_env!r}")
    port = _int(env, "GC_PORT", 8000)
    public_url = env.get("GC_PUBLIC_URL", f"http://localhost:{port}").rstrip("/")
    if "GC_CORS_ORIGINS" in env:
        cors_list = [o.strip().rstrip("/") for o in env["GC_CORS_ORIGINS"].split(",") if o.strip()]
    else:
        # In dev the app is opened at whichever loopback name the developer types; each is the
        # same server, and a refused origin leaves the dashboard without its websocket.
        cors_list = [public_url, *(_dev_origins(port) if gc_env != "prod" else [])]
    cors = tuple(dict.fromkeys(cors_list))
    default_db = f"sqlite:///{PROJECT_ROOT / 'data' / 'gc_admin.db'}"
    settings = Settings(
        env=gc_env,
        database_url=env.get("GC_DATABASE_URL", default_db),
        secret_key=env.get("GC_SECRET_KEY", DEMO_SECRET_KEY),
        port=port,
        public_url=public_url,
        cors_origins=cors,
        staff_session_hours=_int(env, "GC_STAFF_SESSION_HOURS", 12),
        mp_token_minutes=_int(env, "GC_MP_TOKEN_MINUTES", 120),
        login_max_failures=_int(env, "GC_LOGIN_MAX_FAILURES", 5),
        login_window_minutes=_int(env, "GC_LOGIN_WINDOW_MINUTES", 15),
        wechat_base_url=env.get("GC_WECHAT_BASE_URL", "local").rstrip("/"),
        wechat_appid=env.get("GC_WECHAT_APPID", DEMO_WECHAT_APPID),
        wechat_secret=env.get("GC_WECHAT_SECRET", DEMO_WECHAT_SECRET),
        sms_provider=env.get("GC_SMS_PROVIDER", "outbox").strip().lower(),
        sms_aliyun=_vendor(env, "GC_SMS_ALIYUN_", "https://dysmsapi.aliyuncs.com"),
        sms_tencent=_vendor(env, "GC_SMS_TENCENT_", "https://sms.tencentcloudapi.com"),
        upload_dir=Path(env.get("GC_UPLOAD_DIR", str(PROJECT_ROOT / "data" / "uploads"))),
        wxpay=WxPaySettings(
            base_url=env.get("GC_WXPAY_BASE_URL", "local").rstrip("/"),
            mchid=env.get("GC_WXPAY_MCHID", DEMO_WXPAY_MCHID),
            appid=env.get("GC_WXPAY_APPID", env.get("GC_WECHAT_APPID", DEMO_WECHAT_APPID)),
            merchant_key_path=env.get("GC_WXPAY_MERCHANT_KEY_PATH", ""),
            merchant_serial_no=env.get("GC_WXPAY_MERCHANT_SERIAL_NO", ""),
            apiv3_key=env.get("GC_WXPAY_APIV3_KEY", ""),
            public_key_path=env.get("GC_WXPAY_PUBLIC_KEY_PATH", ""),
            public_key_id=env.get("GC_WXPAY_PUBLIC_KEY_ID", ""),
            notify_url=env.get("GC_WXPAY_NOTIFY_URL", f"{public_url}/api/v1/pay/wechat/notify"),
            refund_notify_url=env.get("GC_WXPAY_REFUND_NOTIFY_URL", f"{public_url}/api/v1/pay/wechat/refund-notify"),
            dev_keys_path=Path(env.get("GC_WXPAY_DEV_KEYS", str(PROJECT_ROOT / "data" / "wxpay_dev_keys.json"))),
        ),
        order_unpaid_minutes=_int(env, "GC_ORDER_UNPAID_MINUTES", 30),
        onduty_phones=tuple(p.strip() for p in env.get("GC_ONDUTY_PHONES", "").split(",") if p.strip()),
        order_lease_minutes=_int(env, "GC_ORDER_LEASE_MINUTES", 15),
        order_sla_minutes=_sla(env.get("GC_ORDER_SLA_MINUTES", "")),
        host=_host(env, gc_env),
        allow_simulators=_bool(env, "GC_ALLOW_SIMULATORS"),
        api_url=env.get("REFLEX_API_URL", public_url).rstrip("/"),
        uploads=_upload_limits(env),
        redis_url=(env.get("GC_REDIS_URL") or env.get("REFLEX_REDIS_URL") or "").strip(),
        workers=_int(env, "GC_WORKERS", 0) or None,
        trusted_proxies=frozenset(p.strip() for p in env.get("GC_TRUSTED_PROXIES", "").split(",") if p.strip()),
        log_format=env.get("GC_LOG_FORMAT", "json" if gc_env == "prod" else "text").strip().lower(),
        flowers=_flower_settings(env),
        driver_platform=(env.get("GC_DRIVER_PLATFORM_URL", "local").rstrip("/"), env.get("GC_DRIVER_PLATFORM_CODE", "edaijia"),
                         env.get("GC_DRIVER_PLATFORM_KEY", DEMO_DRIVER_KEY),
                         env.get("GC_DRIVER_PLATFORM_SECRET", DEMO_DRIVER_SECRET)),
        claims=ClaimsSettings(key_b64=env.get("GC_CLAIMS_KEY", DEMO_CLAIMS_KEY), storage=env.get("GC_CLAIMS_STORAGE", ""),
                              s3_endpoint=env.get("GC_CLAIMS_S3_ENDPOINT", ""),
                              four_eyes_fen=_int(env, "GC_CLAIMS_FOUR_EYES_FEN", 10000),
                              four_eyes_nth=_int(env, "GC_CLAIMS_FOUR_EYES_NTH", 3),
                              ocr_after_response=env.get("GC_CLAIMS_OCR_AFTER_RESPONSE", "0") != "0"),
        sim_refund_seconds=_sim_refund_seconds(env, gc_env),
        alipay=AlipaySettings(
            gateway=env.get("GC_ALIPAY_GATEWAY", "" if gc_env == "prod" else "local").strip().rstrip("/"),
            app_id=env.get("GC_ALIPAY_APP_ID", DEMO_ALIPAY_APP_ID),
            app_private_key_path=env.get("GC_ALIPAY_APP_PRIVATE_KEY_PATH", ""),
            app_cert_path=env.get("GC_ALIPAY_APP_CERT_PATH", ""),
            alipay_cert_path=env.get("GC_ALIPAY_CERT_PATH", ""),
            alipay_root_cert_path=env.get("GC_ALIPAY_ROOT_CERT_PATH", ""),
            timeout_seconds=_int(env, "GC_ALIPAY_TIMEOUT_SECONDS", 15),
            dev_certs_path=Path(env.get("GC_ALIPAY_DEV_CERTS", str(PROJECT_ROOT / "data" / "alipay_dev_certs.json"))),
        ),
        tasks_heartbeat_seconds=_int(env, "GC_TASKS_HEARTBEAT_SECONDS", 10),
        tasks_every_seconds=_int(env, "GC_TASKS_EVERY_SECONDS", 0),
        tasks_extra_modules=env.get("GC_TASKS_EXTRA_MODULES", ""),
        tasks_wait_seconds=_int(env, "GC_TASKS_WAIT_SECONDS", 300),
    )
    validate(settings)
    return settings


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return b""


def validate(s: Settings) -> None:
    """Refuse combinations that must never run; in prod refuse every demo secret."""
    problems: list[str] = []
    if s.sms_provider not in SMS_PROVIDERS:
        problems.append(f"GC_SMS_PROVIDER must be one of {SMS_PROVIDERS}")
    if "*" in s.cors_origins:
        problems.append("GC_CORS_ORIGINS must list origins; '*' with credentials is not allowed")
    if not 1 <= s.order_unpaid_minutes <= 24 * 60:
        problems.append("GC_ORDER_UNPAID_MINUTES must be between 1 and 1440")
    if not 1 <= s.order_lease_minutes <= 24 * 60:
        problems.append("GC_ORDER_LEASE_MINUTES must be between 1 and 1440")
    if any(m < 1 for _, m in s.order_sla_minutes):
        problems.append("GC_ORDER_SLA_MINUTES: every limit must be at least 1 minute (type=minutes,...)")
    bad_phones = [p for p in s.onduty_phones if not (len(p) == 11 and p.isascii() and p.isdigit() and p[0] == "1")]
    if bad_phones:
        problems.append(f"GC_ONDUTY_PHONES must list 11-digit mainland mobile numbers, got {bad_phones}")
    local = [n for n, v in (("GC_WECHAT_BASE_URL", s.wechat_base_url), ("GC_WXPAY_BASE_URL", s.wxpay.base_url),
                            ("GC_ALIPAY_GATEWAY", s.alipay.gateway)) if v == "local"]
    if s.env != "prod" and local and not s.simulators_enabled:
        problems.append(
            f"GC_HOST={s.host} listens beyond this machine, and {', '.join(local)}=local needs the simulators under "
            "/sim, with which anyone who reaches the port can mint a WeChat identity for any phone and fake payments. "
            "Bind to loopback (GC_HOST=127.0.0.1), point those settings at the real services, or accept the risk "
            "with GC_ALLOW_SIMULATORS=1")
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        problems.append("GC_REDIS_URL must start with redis://, rediss:// or unix://")
    if s.workers is not None and s.workers < 1:
        problems.append("GC_WORKERS must be a positive integer")
    if (s.workers or 1) > 1 and not s.redis_url:
        problems.append(f"GC_WORKERS={s.workers} needs GC_REDIS_URL: each worker would keep its own dashboard "
                        "sessions (Reflex's state manager) and a browser would lose its page whenever the next "
                        "event lands on another worker")
    if s.log_format not in ("json", "text"):
        problems.append("GC_LOG_FORMAT must be json or text")
    u = s.uploads
    if min(u.max_bytes, u.max_rows, u.max_columns, u.max_cells, u.max_line_bytes, u.xlsx_max_entries,
           u.xlsx_max_entry_bytes, u.xlsx_max_total_bytes, u.xlsx_max_ratio, u.image_max_bytes, u.image_max_pixels) < 1:
        problems.append("GC_UPLOAD_* limits must be positive integers")
    f = s.flowers
    if not (f.open_hour < f.close_hour and 0 <= f.lead_minutes <= 7 * 24 * 60 and 1 <= f.slot_capacity <= 10_000
            and 1 <= f.days_ahead <= 90):
        problems.append("GC_FLOWER_OPEN must be before GC_FLOWER_CLOSE; GC_FLOWER_LEAD_MINUTES 0-10080, "
                        "GC_FLOWER_SLOT_CAPACITY 1-10000, GC_FLOWER_DAYS_AHEAD 1-90")
    if not 1 <= s.tasks_heartbeat_seconds <= 300 or not 0 <= s.tasks_every_seconds <= 59:
        problems.append("GC_TASKS_HEARTBEAT_SECONDS must be 1-300 and GC_TASKS_EVERY_SECONDS 0-59")
    if not 0 <= s.tasks_wait_seconds <= 3600:
        problems.append("GC_TASKS_WAIT_SECONDS must be 0-3600")
    if s.env == "prod" and (s.tasks_every_seconds or s.tasks_extra_modules):
        problems.append("GC_TASKS_EVERY_SECONDS / GC_TASKS_EXTRA_MODULES are for tests; unset them in prod")
    if len(_b64(s.claims.key_b64)) != 32:
        problems.append("GC_CLAIMS_KEY must be base64 of 32 random bytes (AES-256-GCM key for payout accounts)")
    if s.env == "prod":
        if s.claims.key_b64 == DEMO_CLAIMS_KEY:
            problems.append("GC_CLAIMS_KEY must be set in prod (the demo key encrypts nothing secret)")
        if s.secret_key == DEMO_SECRET_KEY or len(s.secret_key) < 32:
            problems.append("GC_SECRET_KEY must be set to a random value of at least 32 characters")
        if s.wechat_base_url == "local":
            problems.append("GC_WECHAT_BASE_URL must be the real WeChat API origin in prod")
        if s.wechat_appid == DEMO_WECHAT_APPID or s.wechat_secret == DEMO_WECHAT_SECRET:
            problems.append("GC_WECHAT_APPID / GC_WECHAT_SECRET must be the real credentials in prod")
        if s.sms_provider == "outbox":
            problems.append("GC_SMS_PROVIDER=outbox only records messages; choose aliyun or tencent in prod")
        vendor = {"aliyun": s.sms_aliyun, "tencent": s.sms_tencent}.get(s.sms_provider)
        if vendor is not None and not (vendor.key_id and vendor.key_secret and vendor.sign_name):
            problems.append(f"GC_SMS_{s.sms_provider.upper()}_* credentials and sign name are required")
        w = s.wxpay
        if w.base_url == "local":
            problems.append("GC_WXPAY_BASE_URL must be the real WeChat Pay API origin in prod")
        if w.mchid == DEMO_WXPAY_MCHID or not (w.merchant_key_path and w.merchant_serial_no and w.public_key_path
                                               and w.public_key_id):
            problems.append("GC_WXPAY_MCHID and the merchant/platform key settings (GC_WXPAY_*) are required in prod")
        if s.driver_platform[0] == "local" or s.driver_platform[3] == DEMO_DRIVER_SECRET:
            problems.append("GC_DRIVER_PLATFORM_URL / _KEY / _SECRET must be the real driver platform's in prod")
        if len(w.apiv3_key.encode()) != 32:
            problems.append("GC_WXPAY_APIV3_KEY must be the 32-byte APIv3 key")
    if s.sim_refund_seconds is not None and not 0 < s.sim_refund_seconds <= 3600:
        problems.append("GC_SIM_REFUND_SECONDS must be a number of seconds between 0 (off) and 3600")
    a = s.alipay
    if not 1 <= a.timeout_seconds <= 120:
        problems.append("GC_ALIPAY_TIMEOUT_SECONDS must be between 1 and 120")
    if a.gateway not in ("", "local") and not (a.app_private_key_path and a.app_cert_path and a.alipay_cert_path
                                               and a.alipay_root_cert_path):
        problems.append("GC_ALIPAY_GATEWAY needs GC_ALIPAY_APP_PRIVATE_KEY_PATH, GC_ALIPAY_APP_CERT_PATH, "
                        "GC_ALIPAY_CERT_PATH and GC_ALIPAY_ROOT_CERT_PATH (certificate mode)")
    if s.env == "prod" and a.gateway == "local":
        problems.append("GC_ALIPAY_GATEWAY must be the real Alipay gateway (or empty: no transfers) in prod")
    if s.env == "prod" and a.gateway and a.app_id == DEMO_ALIPAY_APP_ID:
        problems.append("GC_ALIPAY_APP_ID must be the real Alipay application id in prod")
    if problems:
        raise ConfigError("invalid configuration:\n- " + "\n- ".join(problems))


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return load_settings()
