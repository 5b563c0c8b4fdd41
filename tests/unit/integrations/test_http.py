"""The integrations' shared HTTP plumbing: one verifying TLS context, one pooled poster."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gc_admin.integrations import http


def test_clients_share_one_context_that_still_verifies():
    a, b = http.new_client(), http.new_client(timeout=3)
    try:
        ctx = http.tls_context()
        assert ctx is http.tls_context()
        for c in (a, b):
            assert c._transport._pool._ssl_context is ctx  # noqa: SLF001 - what httpx will use
        # the same checks as httpx's default: a certificate is required and the host name must match
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert ctx.get_ca_certs() or ctx.cert_store_stats()["x509_ca"] > 0
    finally:
        a.close()
        b.close()


def test_an_explicit_verify_is_kept():
    c = http.new_client(verify=False)
    try:
        assert c._transport._pool._ssl_context is not http.tls_context()  # noqa: SLF001
    finally:
        c.close()


def test_post_delivers_the_body_and_headers_over_one_kept_alive_connection():
    seen: list[tuple[str, str, bytes, int]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers["X-Sig"], body, self.client_address[1]))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/notify"
        assert [http.post(url, {"X-Sig": f"s{i}"}, f"body{i}".encode()) for i in range(3)] == [204, 204, 204]
    finally:
        server.shutdown()
        server.server_close()
    assert [(p, sig, body) for p, sig, body, _ in seen] == [("/notify", f"s{i}", f"body{i}".encode()) for i in range(3)]
    assert len({port for *_, port in seen}) == 1  # one connection, kept alive
