"""Tencent Cloud SMS (``SendSms``, API version 2021-01-11) over its TC3-HMAC-SHA256 signature.

``POST <endpoint>/`` with a JSON body (``PhoneNumberSet`` in E.164, ``+86…``) and ``X-TC-*``
headers (see ``signing.py``). Tencent answers HTTP 200 either way: a request-level failure is
``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``, a per-number failure is a
``SendStatusSet`` entry whose ``Code`` is not ``"Ok"``. Both become an :class:`SmsError`.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx

from gc_admin.core.clock import utcnow
from gc_admin.integrations.sms.base import SmsError
from gc_admin.integrations.sms.signing import (
    scrub,
    sha256_hex,
    tc3_authorization,
    tc3_canonical_request,
    tc3_signature,
)
from gc_admin.integrations.sms.vendor import VendorSender

ACTION = "SendSms"
API_VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = ("content-type", "host")


class TencentSmsSender(VendorSender):
    """Sends templated SMS through Tencent Cloud ``SendSms`` (sync, one request per message)."""

    name = "tencent"
    template_key = "TemplateId"
    id_key = "SerialNo"

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        templates: dict[str, str],
        region: str = "ap-guangzhou",
        endpoint: str = "https://sms.tencentcloudapi.com",
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(sign_name=sign_name, templates=templates, endpoint=endpoint, transport=transport,
                         timeout=timeout)
        self._secret_id = secret_id
        self._secret_key = secret_key
        self._sdk_app_id = sdk_app_id
        self._region = region

    def build_request(self, *, phone: str, template: str, params: dict[str, str],
                      now: dt.datetime | None = None) -> httpx.Request:
        """The signed SendSms request for the mainland number ``phone`` (sent as ``+86<phone>``)."""
        template_id, declared = self._template(template, params)
        payload = {
            "PhoneNumberSet": ["+86" + phone],
            "SmsSdkAppId": self._sdk_app_id,
            "SignName": self._sign_name,
            "TemplateId": template_id,
            "TemplateParamSet": list(declared.values()),
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int((now or utcnow()).timestamp())
        headers = {
            "content-type": CONTENT_TYPE,
            "host": self._host,
            "x-tc-action": ACTION,
            "x-tc-version": API_VERSION,
            "x-tc-timestamp": str(timestamp),
            "x-tc-region": self._region,
        }
        canonical = tc3_canonical_request(
            method="POST", canonical_uri="/", canonical_query="", headers=headers,
            signed_headers=SIGNED_HEADERS, hashed_payload=sha256_hex(body),
        )
        signature = tc3_signature(secret_key=self._secret_key, timestamp=timestamp, service=SERVICE,
                                  canonical_request=canonical)
        headers["authorization"] = tc3_authorization(
            secret_id=self._secret_id, timestamp=timestamp, service=SERVICE, signed_headers=SIGNED_HEADERS,
            signature=signature)
        return httpx.Request("POST", self._url, headers=headers, content=body)

    def _message_id(self, response: httpx.Response, params: dict[str, str]) -> str:
        """Tencent's ``SerialNo`` of the (only) number's ``SendStatusSet`` entry whose ``Code`` is Ok."""
        if response.status_code // 100 != 2:
            raise SmsError(f"tencent SendSms failed: HTTP {response.status_code}")
        result = self._json(response).get("Response")
        if not isinstance(result, dict):
            raise SmsError("tencent SendSms: the reply has no Response object")
        request_id = result.get("RequestId")
        error = result.get("Error")
        if isinstance(error, dict):
            raise SmsError(scrub(f"tencent SendSms failed: Code={error.get('Code')}, "
                                 f"Message={error.get('Message')}, RequestId={request_id}", params))
        statuses = result.get("SendStatusSet")
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
            raise SmsError(f"tencent SendSms: no SendStatusSet in the reply, RequestId={request_id}")
        status = statuses[0]
        if status.get("Code") != "Ok":
            raise SmsError(scrub(f"tencent SendSms failed: Code={status.get('Code')}, "
                                 f"Message={status.get('Message')}, RequestId={request_id}", params))
        serial_no = status.get("SerialNo")
        if not isinstance(serial_no, str) or not serial_no:
            raise SmsError(f"tencent SendSms: Code=Ok but no SerialNo, RequestId={request_id}")
        return serial_no
