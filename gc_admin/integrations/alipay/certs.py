"""Throwaway certificate-mode credentials for dev and tests (never real ones).

Alipay's certificate mode gives an application three files: its own certificate
``appCertPublicKey_<appid>.crt`` (issued by Alipay's CA for the key pair the application made),
``alipayCertPublicKey_RSA2.crt`` (Alipay's signing key) and ``alipayRootCert.crt`` (several root
certificates, RSA and SM2). :meth:`DevPki.generate` builds the same shape with ``cryptography``:
two RSA roots and an ECDSA root (standing in for the SM2 one, which the SN rule must skip), an
intermediate CA under the first root, and the application and Alipay certificates issued by it
(the Alipay certificate file carries the intermediate after the leaf; the leaf, first, is the one
whose SN and key count). Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gc_admin.core.clock import utcnow
from gc_admin.integrations.simio import load_or_create_json


def _name(cn: str, ou: str = "Certification Authority", o: str = "GC Demo Alipay") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: x509.Name, public_key, issuer: x509.Name, issuer_key, *, ca: bool,
          digest: hashes.HashAlgorithm | None = None) -> x509.Certificate:
    now = utcnow()
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return builder.sign(issuer_key, digest or hashes.SHA256())


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclasses.dataclass(frozen=True)
class DevPki:
    """PEM texts: the application's private key and certificate, Alipay's private key (only the
    simulator has it) and certificate, and the root certificate file."""

    app_private_key: str
    app_cert: str
    alipay_private_key: str
    alipay_cert: str
    alipay_root_cert: str

    @classmethod
    def generate(cls, *, app_id: str = "2021000000000000") -> DevPki:
        root_key, root2_key, ec_key, ca_key = _rsa(), _rsa(), ec.generate_private_key(ec.SECP256R1()), _rsa()
        root_name, root2_name = _name("GC Demo Alipay Root CA R1"), _name("GC Demo Alipay Root CA R2")
        ec_name = _name("GC Demo Alipay Root CA (non-RSA)")
        root = _cert(root_name, root_key.public_key(), root_name, root_key, ca=True)
        root2 = _cert(root2_name, root2_key.public_key(), root2_name, root2_key, ca=True, digest=hashes.SHA384())
        ec_root = _cert(ec_name, ec_key.public_key(), ec_name, ec_key, ca=True)
        ca_name = _name("GC Demo Alipay Certification Authority Class 2 R1")
        ca = _cert(ca_name, ca_key.public_key(), root_name, root_key, ca=True)
        app_key, alipay_key = _rsa(), _rsa()
        app = _cert(_name(app_id, ou="Alipay Open Platform", o="GC Demo App"), app_key.public_key(), ca_name, ca_key,
                    ca=False)
        alipay = _cert(_name("GC Demo Alipay Signing Key", ou="Alipay"), alipay_key.public_key(), ca_name, ca_key,
                       ca=False)
        roots = "\n".join(map(_pem, (root, ec_root, root2)))  # a blank line between, as in Alipay's file
        return cls(app_private_key=_key_pem(app_key), app_cert=_pem(app), alipay_private_key=_key_pem(alipay_key),
                   alipay_cert=_pem(alipay) + _pem(ca), alipay_root_cert=roots)


def load_or_create_dev_pki(path: Path | str, *, app_id: str) -> DevPki:
    """The dev credentials stored at ``path`` (JSON, mode 0600), created once: every worker of the
    dev server then signs and verifies with the same ones. Creation is atomic (``os.link`` of a
    complete temporary file), so concurrent first starts agree on one set."""
    return DevPki(**load_or_create_json(path, lambda: dataclasses.asdict(DevPki.generate(app_id=app_id))))
