"""Aliyun SMS (dysmsapi ``SendSms``, API version 2017-05-25) over its OpenAPI V3 signature.

``POST <endpoint>/?PhoneNumbers=…&SignName=…&TemplateCode=…&TemplateParam=<json>`` with an empty
body and ``ACS3-HMAC-SHA256`` headers (see ``signing.py``). Success is HTTP 200 with
``{"Code": "OK", "BizId": …}``; anything else is an :class:`SmsError`. Aliyun SendSms is not
idempotent, so a failure is reported, never retried here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

import httpx

from gc_admin.core.clock import utcnow
from gc_admin.core.phone import mask_phone, normalize_phone
from gc_admin.integrations.sms.base import TEMPLATES, SendResult, SmsError
from gc_admin.integrations.sms.signing import (
    acs3_authorization,
    acs3_canonical_query,
    acs3_canonical_request,
    acs3_signature,
    scrub,
    sha256_hex,
)

log = logging.getLogger(__name__)

ACTION = "SendSms"
API_VERSION = "2017-05-25"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class AliyunSmsSender:
    """Sends templated SMS through Aliyun dysmsapi ``SendSms`` (sync, one request per message)."""

    name = "aliyun"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        templates: dict[str, str],
        endpoint: str = "https://dysmsapi.aliyuncs.com",
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._key_id = access_key_id
        self._key_secret = access_key_secret
        self._sign_name = sign_name
        self._templates = dict(templates)
        self._endpoint = endpoint
        # The API is RPC style: the signed canonical URI is always "/", i.e. the endpoint's root.
        self._url = httpx.URL(endpoint.rstrip("/") + "/")
        self._host = self._url.netloc.decode("ascii")
        self._transport = transport
        self._timeout = timeout

    def build_request(
        self,
        *,
        phone: str,
        template: str,
        params: dict[str, str],
        now: dt.datetime | None = None,
        nonce: str | None = None,
    ) -> httpx.Request:
        """The signed SendSms request (no validation of ``phone``; :meth:`send` does that)."""
        template_code = self._templates.get(template)
        if not template_code:
            raise SmsError(f"aliyun: no TemplateCode configured for template {template!r}")
        template_param = json.dumps(_template_params(template, params), ensure_ascii=False, separators=(",", ":"))
        query = [
            ("PhoneNumbers", phone),
            ("SignName", self._sign_name),
            ("TemplateCode", template_code),
            ("TemplateParam", template_param),
        ]
        body = b""
        when = (now or utcnow()).astimezone(dt.timezone.utc)
        headers = {
            "host": self._host,
            "x-acs-action": ACTION,
            "x-acs-version": API_VERSION,
            "x-acs-date": when.strftime(DATE_FORMAT),
            "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
            "x-acs-content-sha256": sha256_hex(body),
        }
        signed = sorted(headers)
        canonical = acs3_canonical_request(
            method="POST", canonical_uri="/", query=query, headers=headers, signed_headers=signed,
            hashed_payload=headers["x-acs-content-sha256"],
        )
        signature = acs3_signature(access_key_secret=self._key_secret, canonical_request=canonical)
        headers["authorization"] = acs3_authorization(
            access_key_id=self._key_id, signed_headers=signed, signature=signature)
        headers["accept"] = "application/json"
        # The wire query is the canonical one, so what the server decodes is exactly what was signed.
        url = self._url.copy_with(query=acs3_canonical_query(query).encode("ascii"))
        return httpx.Request("POST", url, headers=headers, content=body)

    def send(self, *, phone: str, template: str, params: dict[str, str]) -> SendResult:
        """Send one message; the result's ``provider_ref`` is Aliyun's ``BizId``."""
        number = normalize_phone(phone)
        if number is None:
            raise SmsError("aliyun SendSms: the phone is not an 11-digit mainland mobile number")
        request = self.build_request(phone=number, template=template, params=params)
        data, status = _exchange(request, self._transport, self._timeout, params)
        code, message, request_id = data.get("Code"), data.get("Message"), data.get("RequestId")
        if status // 100 != 2 or code != "OK":
            raise SmsError(scrub(
                f"aliyun SendSms failed: HTTP {status}, Code={code}, Message={message}, RequestId={request_id}",
                params))
        biz_id = data.get("BizId")
        if not isinstance(biz_id, str) or not biz_id:
            raise SmsError(f"aliyun SendSms: Code=OK but no BizId, RequestId={request_id}")
        log.info("aliyun SendSms %s to %s: BizId=%s", template, mask_phone(number), biz_id)
        return SendResult(provider_ref=biz_id)


def _template_params(template: str, params: dict[str, str]) -> dict[str, str]:
    """The template's declared parameters (only those), as strings."""
    if template not in TEMPLATES:
        raise SmsError(f"unknown SMS template {template!r}")
    names = TEMPLATES[template][1]
    missing = [n for n in names if n not in params]
    if missing:
        raise SmsError(f"template {template!r} misses params {missing}")
    return {n: str(params[n]) for n in names}


def _exchange(request: httpx.Request, transport: httpx.BaseTransport | None, timeout: float,
              params: dict[str, str]) -> tuple[dict[str, Any], int]:
    """Send ``request``; return its JSON object and HTTP status, or raise :class:`SmsError`."""
    client = httpx.Client(transport=transport, timeout=timeout)
    try:
        response = client.send(request)
    except httpx.HTTPError as exc:
        raise SmsError(scrub(f"aliyun SendSms transport error: {type(exc).__name__}: {exc}", params)) from None
    finally:
        if transport is None:  # an injected transport belongs to the caller: leave it open
            client.close()
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SmsError(f"aliyun SendSms: HTTP {response.status_code} with a non-JSON-object body")
    return data, response.status_code
