"""Pure request-signing functions for the SMS vendors' APIs.

Both the senders (``aliyun.py`` / ``tencent.py``) and the simulator (``simulator.py``) use these
canonicalisation rules; the simulator applies them to the raw request it received (method, raw
query string, headers, body bytes) and compares its own result with the ``Authorization`` header.
Every function here is deterministic: inputs in, strings out, no clock and no I/O.

- Aliyun OpenAPI V3 (``ACS3-HMAC-SHA256``), as used by dysmsapi ``SendSms`` 2017-05-25:
  help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature
- Tencent Cloud API 3.0 (``TC3-HMAC-SHA256``), as used by sms ``SendSms`` 2021-01-11.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

from gc_admin.integrations.sms.base import SECRET_PARAMS

ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
TC3_ALGORITHM = "TC3-HMAC-SHA256"
TC3_TERMINATOR = "tc3_request"


def sha256_hex(data: bytes | str) -> str:
    """Lower-case hex SHA-256 of ``data`` (``str`` is encoded as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def hmac_sha256(key: bytes, msg: bytes | str) -> bytes:
    """Raw HMAC-SHA256 of ``msg`` (``str`` is encoded as UTF-8) under ``key``."""
    if isinstance(msg, str):
        msg = msg.encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).digest()


def scrub(text: str, params: Mapping[str, str]) -> str:
    """``text`` with message parameter values replaced by ``***`` (login codes must not reach logs)."""
    for key, value in params.items():
        value = str(value)
        if value and (key in SECRET_PARAMS or len(value) >= 3):
            text = text.replace(value, "***")
    return text


def _canonical_headers(headers: Mapping[str, str], signed_headers: Sequence[str], *, lower_values: bool) -> str:
    """``name:value\\n`` for each signed header, names lower-cased, values trimmed, sorted by name.

    Raises ``KeyError`` naming a signed header that ``headers`` lacks.
    """
    by_name = {k.lower(): v for k, v in headers.items()}
    out = []
    for name in sorted(n.lower() for n in signed_headers):
        value = by_name[name].strip()
        out.append(f"{name}:{value.lower() if lower_values else value}\n")
    return "".join(out)


def signed_headers_string(signed_headers: Iterable[str]) -> str:
    """Lower-cased, sorted, ``;``-joined header names."""
    return ";".join(sorted(n.lower() for n in signed_headers))


def _canonical_request(method: str, canonical_uri: str, canonical_query: str, headers: Mapping[str, str],
                       signed_headers: Sequence[str], hashed_payload: str, *, lower_values: bool) -> str:
    """The CanonicalRequest both vendors sign, one part a line: method, URI, query, headers, signed
    header names, payload hash (they differ only in whether header *values* are lower-cased)."""
    return "\n".join([
        method.upper(),
        canonical_uri,
        canonical_query,
        _canonical_headers(headers, signed_headers, lower_values=lower_values),
        signed_headers_string(signed_headers),
        hashed_payload,
    ])


# --------------------------------------------------------------------------------------------------
# Aliyun ACS3-HMAC-SHA256


def acs3_encode(value: str) -> str:
    """RFC 3986 percent-encoding as Aliyun specifies it (space -> %20, * -> %2A, ~ kept)."""
    return quote(value, safe="~")


def acs3_canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """``k=v`` pairs sorted by name, each side encoded, joined with ``&``; '' when there are none.

    A parameter without a value is ``k=`` (the empty string is its value).
    """
    pairs = sorted(params, key=lambda kv: kv[0])
    return "&".join(f"{acs3_encode(k)}={acs3_encode(v)}" for k, v in pairs)


def acs3_canonical_request(
    *,
    method: str,
    canonical_uri: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    hashed_payload: str,
) -> str:
    """The V3 CanonicalRequest: method, URI, query, headers, signed header names, payload hash."""
    return _canonical_request(method, canonical_uri, acs3_canonical_query(query), headers, signed_headers,
                              hashed_payload, lower_values=False)


def acs3_string_to_sign(canonical_request: str) -> str:
    """``ACS3-HMAC-SHA256\\n`` + hex SHA-256 of the canonical request."""
    return f"{ACS3_ALGORITHM}\n{sha256_hex(canonical_request)}"


def acs3_signature(*, access_key_secret: str, canonical_request: str) -> str:
    """Hex HMAC-SHA256 of the string to sign, keyed with the AccessKey secret."""
    return hmac_sha256(access_key_secret.encode("utf-8"), acs3_string_to_sign(canonical_request)).hex()


def acs3_authorization(*, access_key_id: str, signed_headers: Sequence[str], signature: str) -> str:
    """``ACS3-HMAC-SHA256 Credential=<AK>,SignedHeaders=<names>,Signature=<hex>``."""
    return (f"{ACS3_ALGORITHM} Credential={access_key_id},"
            f"SignedHeaders={signed_headers_string(signed_headers)},Signature={signature}")


def _parse_auth_fields(value: str, algorithm: str) -> dict[str, str] | None:
    prefix = algorithm + " "
    if not value.startswith(prefix):
        return None
    fields: dict[str, str] = {}
    for part in value[len(prefix):].split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or not key or key in fields:
            return None
        fields[key] = val.strip()
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        return None
    if not all(fields.values()):
        return None
    return fields


def parse_acs3_authorization(value: str) -> tuple[str, list[str], str] | None:
    """``(access_key_id, signed_header_names, signature)`` or ``None`` if malformed."""
    fields = _parse_auth_fields(value, ACS3_ALGORITHM)
    if fields is None:
        return None
    return fields["Credential"], fields["SignedHeaders"].split(";"), fields["Signature"]


# --------------------------------------------------------------------------------------------------
# Tencent TC3-HMAC-SHA256


def tc3_date(timestamp: int) -> str:
    """The UTC ``YYYY-MM-DD`` of a UNIX timestamp (the credential scope's date)."""
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d")


def tc3_credential_scope(*, timestamp: int, service: str) -> str:
    """``<date>/<service>/tc3_request``."""
    return f"{tc3_date(timestamp)}/{service}/{TC3_TERMINATOR}"


def tc3_canonical_request(
    *,
    method: str,
    canonical_uri: str,
    canonical_query: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    hashed_payload: str,
) -> str:
    """The TC3 CanonicalRequest (header names *and values* lower-cased, as Tencent specifies)."""
    return _canonical_request(method, canonical_uri, canonical_query, headers, signed_headers, hashed_payload,
                              lower_values=True)


def tc3_string_to_sign(*, timestamp: int, service: str, canonical_request: str) -> str:
    """``TC3-HMAC-SHA256\\n<ts>\\n<scope>\\n<hex sha256(canonical request)>``."""
    scope = tc3_credential_scope(timestamp=timestamp, service=service)
    return f"{TC3_ALGORITHM}\n{timestamp}\n{scope}\n{sha256_hex(canonical_request)}"


def tc3_signature(*, secret_key: str, timestamp: int, service: str, canonical_request: str) -> str:
    """Hex signature: HMAC chain ``"TC3"+key -> date -> service -> tc3_request``, then the string to sign."""
    k_date = hmac_sha256(("TC3" + secret_key).encode("utf-8"), tc3_date(timestamp))
    k_service = hmac_sha256(k_date, service)
    k_signing = hmac_sha256(k_service, TC3_TERMINATOR)
    string_to_sign = tc3_string_to_sign(timestamp=timestamp, service=service, canonical_request=canonical_request)
    return hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_authorization(*, secret_id: str, timestamp: int, service: str, signed_headers: Sequence[str],
                      signature: str) -> str:
    """``TC3-HMAC-SHA256 Credential=<id>/<scope>, SignedHeaders=<names>, Signature=<hex>``."""
    scope = tc3_credential_scope(timestamp=timestamp, service=service)
    return (f"{TC3_ALGORITHM} Credential={secret_id}/{scope}, "
            f"SignedHeaders={signed_headers_string(signed_headers)}, Signature={signature}")


def parse_tc3_authorization(value: str) -> tuple[str, str, list[str], str] | None:
    """``(secret_id, credential_scope, signed_header_names, signature)`` or ``None`` if malformed."""
    fields = _parse_auth_fields(value, TC3_ALGORITHM)
    if fields is None:
        return None
    secret_id, sep, scope = fields["Credential"].partition("/")
    if not sep or not secret_id or not scope:
        return None
    return secret_id, scope, fields["SignedHeaders"].split(";"), fields["Signature"]
