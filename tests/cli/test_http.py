"""The CLI's HTTP client: TLS only where the server speaks it."""

from __future__ import annotations

import ssl

from vllama.cli.http import Client


def test_https_verifies_against_the_ca_bundle_and_plain_http_loads_none():
    secure = Client("https://models.example:443").http._transport._pool._ssl_context
    assert secure.verify_mode == ssl.CERT_REQUIRED and secure.check_hostname and secure.get_ca_certs() != []
    plain = Client("http://127.0.0.1:11434").http._transport._pool._ssl_context
    # never used over http; were it used, it would refuse every certificate (no CA to trust)
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname and plain.get_ca_certs() == []
