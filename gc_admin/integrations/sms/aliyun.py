"""Aliyun SMS (dysmsapi ``SendSms``, API version 2017-05-25) over its OpenAPI V3 signature.

``POST <endpoint>/?PhoneNumbers=…&SignName=…&TemplateCode=…&TemplateParam=<json>`` with an empty
body and ``ACS3-HMAC-SHA256`` headers (see ``signing.py``). Success is HTTP 200 with
``{"Code": "OK", "BizId": …}``; anything else is an :class:`SmsError`. Aliyun SendSms is not
idempotent, so a failure is reported, never retried here.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import httpx

from gc_admin.core.clock import utcnow
from gc_admin.integrations.sms.base import SmsError
from gc_admin.integrations.sms.signing import (
    acs3_authorization,
    acs3_canonical_query,
    acs3_canonical_request,
    acs3_signature,
    scrub,
    sha256_hex,
)
from gc_admin.integrations.sms.vendor import VendorSender

ACTION = "SendSms"
API_VERSION = "2017-05-25"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class AliyunSmsSender(VendorSender):
    """Sends templated SMS through Aliyun dysmsapi ``SendSms`` (sync, one request per message)."""

    name = "aliyun"
    template_key = "TemplateCode"
    id_key = "BizId"

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
        super().__init__(sign_name=sign_name, templates=templates, endpoint=endpoint, transport=transport,
                         timeout=timeout)
        self._key_id = access_key_id
        self._key_secret = access_key_secret

    def build_request(self, *, phone: str, template: str, params: dict[str, str], now: dt.datetime | None = None,
                      nonce: str | None = None) -> httpx.Request:
        """The signed SendSms request (``now`` and ``nonce``: fixed by tests of the signature)."""
        template_code, declared = self._template(template, params)
        template_param = json.dumps(declared, ensure_ascii=False, separators=(",", ":"))
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

    def _message_id(self, response: httpx.Response, params: dict[str, str]) -> str:
        """Aliyun's ``BizId`` of a reply with HTTP 200 and ``Code`` OK."""
        data, status = self._json(response), response.status_code
        code, message, request_id = data.get("Code"), data.get("Message"), data.get("RequestId")
        if status // 100 != 2 or code != "OK":
            raise SmsError(scrub(
                f"aliyun SendSms failed: HTTP {status}, Code={code}, Message={message}, RequestId={request_id}",
                params))
        biz_id = data.get("BizId")
        if not isinstance(biz_id, str) or not biz_id:
            raise SmsError(f"aliyun SendSms: Code=OK but no BizId, RequestId={request_id}")
        return biz_id
