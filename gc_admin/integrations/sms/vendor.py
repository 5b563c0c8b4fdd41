"""What the two cloud vendors' senders (``aliyun.py``, ``tencent.py``) share: one endpoint root, the
template check, the phone check and the HTTP exchange — everything but each vendor's request and reply.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from gc_admin.core.phone import mask_phone, normalize_phone
from gc_admin.integrations.http import new_client
from gc_admin.integrations.sms.base import TEMPLATES, SendResult, SmsError
from gc_admin.integrations.sms.signing import scrub

log = logging.getLogger(__name__)


def declared_params(template: str, params: dict[str, str]) -> dict[str, str]:
    """The template's declared parameters (only those, in its order), as strings; :class:`SmsError` if one is missing."""
    if template not in TEMPLATES:
        raise SmsError(f"unknown SMS template {template!r}")
    names = TEMPLATES[template][1]
    missing = [n for n in names if n not in params]
    if missing:
        raise SmsError(f"template {template!r} misses params {missing}")
    return {n: str(params[n]) for n in names}


class VendorSender:
    """The base of a vendor's ``SendSms`` sender (sync, one request per message, never retried here).

    A vendor implements ``build_request`` (its signed request) and ``_message_id`` (its reply read).
    """

    name: str  # "aliyun" | "tencent": in every log line and error
    template_key: str  # the vendor's name for a template's id ("TemplateCode" | "TemplateId")
    id_key: str  # the vendor's name for a message's id ("BizId" | "SerialNo")

    def __init__(self, *, sign_name: str, templates: dict[str, str], endpoint: str,
                 transport: httpx.BaseTransport | None, timeout: float) -> None:
        self._sign_name = sign_name
        self._templates = dict(templates)
        # Both APIs are RPC style: the signed canonical URI is always "/", i.e. the endpoint's root.
        self._url = httpx.URL(endpoint.rstrip("/") + "/")
        self._host = self._url.netloc.decode("ascii")
        self._transport = transport
        self._timeout = timeout

    def _template(self, template: str, params: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The vendor's id configured for ``template``, and the template's declared parameters."""
        template_id = self._templates.get(template)
        if not template_id:
            raise SmsError(f"{self.name}: no {self.template_key} configured for template {template!r}")
        return template_id, declared_params(template, params)

    def build_request(self, *, phone: str, template: str, params: dict[str, str]) -> httpx.Request:
        """The signed SendSms request (no validation of ``phone``; :meth:`send` does that)."""
        raise NotImplementedError

    def _message_id(self, response: httpx.Response, params: dict[str, str]) -> str:
        """The vendor's id of the sent message from its reply, or :class:`SmsError`."""
        raise NotImplementedError

    def send(self, *, phone: str, template: str, params: dict[str, str]) -> SendResult:
        """Send one message; the result's ``provider_ref`` is the vendor's id of it (``id_key``)."""
        number = normalize_phone(phone)
        if number is None:
            raise SmsError(f"{self.name} SendSms: the phone is not an 11-digit mainland mobile number")
        response = self._post(self.build_request(phone=number, template=template, params=params), params)
        ref = self._message_id(response, params)
        log.info("%s SendSms %s to %s: %s=%s", self.name, template, mask_phone(number), self.id_key, ref)
        return SendResult(provider_ref=ref)

    def _post(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        """Send ``request`` (an injected transport belongs to the caller and stays open)."""
        client = new_client(transport=self._transport, timeout=self._timeout)
        try:
            return client.send(request)
        except httpx.HTTPError as exc:
            raise SmsError(scrub(f"{self.name} SendSms transport error: {type(exc).__name__}: {exc}",
                                 params)) from None
        finally:
            if self._transport is None:
                client.close()

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        """The reply's JSON object, or :class:`SmsError`."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise SmsError(f"{self.name} SendSms: HTTP {response.status_code} with a non-JSON-object body")
        return data
