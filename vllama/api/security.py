"""Browser and network safety, as pure ASGI middleware (streams and disconnects pass untouched).

- CORS as Ollama configures gin-contrib/cors: `OLLAMA_ORIGINS` plus the local and app origins,
  `*` for any; a disallowed Origin is a 403, a preflight from an allowed one a 204.
- The DNS-rebinding guard (Ollama's `allowedHostsMiddleware`): when the server listens on a
  loopback address, the Host header must name this machine or a private address.
- An optional shared secret, `VLLAMA_API_KEY`: every request then needs `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Iterable
from functools import cache
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import env, is_loopback

log = logging.getLogger("vllama.api")

ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")  # cors.DefaultConfig()
ALLOW_HEADERS = (
    "Authorization", "Content-Type", "User-Agent", "Accept", "X-Requested-With",
    # OpenAI compatibility headers
    "OpenAI-Beta", "x-stainless-arch", "x-stainless-async", "x-stainless-custom-poll-interval",
    "x-stainless-helper-method", "x-stainless-lang", "x-stainless-os", "x-stainless-package-version",
    "x-stainless-poll-interval", "x-stainless-retry-count", "x-stainless-runtime",
    "x-stainless-runtime-version", "x-stainless-timeout",
)
MAX_AGE = str(12 * 3600)
LOCAL_ORIGINS = ("localhost", "127.0.0.1", "0.0.0.0")
APP_ORIGINS = ("app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*")
LOCAL_TLDS = ("localhost", "local", "internal")


def _canonical(header: str) -> str:
    """Go's http.CanonicalHeaderKey: `openai-beta` -> `Openai-Beta`."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in header.split("-"))


def allowed_origins(env_value: str | None = None) -> list[str]:
    """Ollama's envconfig.AllowedOrigins(): the OLLAMA_ORIGINS list, then the built-in ones."""
    value = env("OLLAMA_ORIGINS") if env_value is None else env_value
    origins = value.split(",") if value else []
    for host in LOCAL_ORIGINS:
        origins += [f"http://{host}", f"https://{host}", f"http://{host}:*", f"https://{host}:*"]
    return origins + list(APP_ORIGINS)


class CorsPolicy:
    """gin-contrib/cors origin matching with AllowWildcard: exact origins, and one `*` per rule."""

    def __init__(self, origins: Iterable[str]):
        self.allow_all = False
        self.exact: set[str] = set()
        self.wildcards: list[tuple[str, str]] = []
        for origin in origins:
            origin = origin.strip().lower()
            if not origin:
                continue
            if origin == "*":
                self.allow_all = True
            elif "*" in origin:
                at = origin.index("*")
                self.wildcards.append((origin[:at], origin[at + 1:]))
            else:
                self.exact.add(origin)

    def allows(self, origin: str) -> bool:
        if self.allow_all:
            return True
        origin = origin.lower()
        if origin in self.exact:
            return True
        return any(origin.startswith(head) and origin.endswith(tail) and len(origin) >= len(head) + len(tail)
                   for head, tail in self.wildcards)

    def preflight_headers(self, origin: str, requested: str | None) -> list[tuple[str, str]]:
        allow_headers = [_canonical(h) for h in ALLOW_HEADERS]
        # New x-stainless-* headers from newer OpenAI SDKs are allowed too, not just Ollama's list.
        for header in (requested or "").split(","):
            header = header.strip()
            if header.lower().startswith("x-stainless-") and _canonical(header) not in allow_headers:
                allow_headers.append(_canonical(header))
        headers = [
            ("Access-Control-Allow-Methods", ",".join(ALLOW_METHODS)),
            ("Access-Control-Allow-Headers", ",".join(allow_headers)),
            ("Access-Control-Max-Age", MAX_AGE),
        ]
        if self.allow_all:
            headers.append(("Access-Control-Allow-Origin", "*"))
        else:
            headers += [("Vary", "Origin"), ("Vary", "Access-Control-Request-Method"),
                        ("Vary", "Access-Control-Request-Headers"), ("Access-Control-Allow-Origin", origin)]
        return headers

    def normal_headers(self, origin: str) -> list[tuple[str, str]]:
        if self.allow_all:
            return [("Access-Control-Allow-Origin", "*")]
        return [("Vary", "Origin"), ("Access-Control-Allow-Origin", origin)]


# -- Host check ---------------------------------------------------------------------------------

def is_loopback_bind(host: str | None) -> bool:
    return is_loopback(host)


def _split_host(host: str) -> str:
    """The host part of a Host header, without port or IPv6 brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        # only `[addr]` or `[addr]:port`: Go's SplitHostPort fails on `[::1].evil.com`, and so must this
        if end > 0 and (end == len(host) - 1 or host[end + 1] == ":"):
            return host[1:end]
        return host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


_PRIVATE_NETS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]


@cache
def _local_addresses() -> frozenset[str]:
    """Addresses this machine answers to (a stand-in for Go's interface walk); best effort."""
    found: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(ipaddress.ip_address(str(info[4][0]).split("%")[0])))
    except (OSError, ValueError):
        pass
    return frozenset(found)


def _allowed_ip(text: str) -> bool | None:
    """True/False for an IP literal (Go's IsLoopback/IsPrivate/IsUnspecified/local), None otherwise."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback or addr.is_unspecified or any(addr in net for net in _PRIVATE_NETS):
        return True
    return str(addr) in _local_addresses()


@cache
def _hostname() -> str:
    try:
        return socket.gethostname().lower()
    except OSError:
        return ""


def allowed_host_name(host: str) -> bool:
    """Ollama's allowedHost(): localhost, this machine's name, or a *.localhost/.local/.internal name."""
    if host in ("", "localhost") or (host and host == _hostname()):
        return True
    return any(host.endswith("." + tld) for tld in LOCAL_TLDS)


# -- the middleware -----------------------------------------------------------------------------

class SecurityMiddleware:
    """CORS, then the Host check, then the API key, in front of the app."""

    def __init__(self, app: ASGIApp, bind_host: str | None = None, origins: Iterable[str] | None = None,
                 api_key: str | None = None):
        self.app = app
        self.cors = CorsPolicy(allowed_origins() if origins is None else origins)
        self.check_host = is_loopback_bind(bind_host)
        key = env("VLLAMA_API_KEY") if api_key is None else api_key
        self.api_key = key.encode() if key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method = scope["method"]
        host = headers.get("host", "")
        extra: list[tuple[str, str]] = []

        origin = headers.get("origin")
        if origin and origin not in (f"http://{host}", f"https://{host}"):
            if not self.cors.allows(origin):
                await _respond(send, 403)
                return
            if method == "OPTIONS":
                await _respond(send, 204, self.cors.preflight_headers(
                    origin, headers.get("access-control-request-headers")))
                return
            extra = self.cors.normal_headers(origin)

        if self.check_host:
            name = _split_host(host)
            by_ip = _allowed_ip(name)
            if by_ip is None:
                if not allowed_host_name(name):
                    await _respond(send, 403, extra)
                    return
                if method == "OPTIONS":
                    await _respond(send, 204, extra)
                    return
            elif not by_ip:
                await _respond(send, 403, extra)
                return

        # the Anthropic SDK and Claude Code send their key as `x-api-key` on /v1/messages
        if self.api_key is not None and not self._authorized(headers.get("authorization", "")) and not (
                scope["path"].startswith("/v1/messages") and self._key_matches(headers.get("x-api-key", ""))):
            await _respond(send, 401, extra, {"error": "unauthorized"})
            return

        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = [(k, v) for k, v in message.get("headers", [])
                       if k.lower() != b"access-control-allow-origin"]
                raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra]
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            token = ""
        return self._key_matches(token)

    def _key_matches(self, token: str) -> bool:
        # compare_digest takes as long whatever the mismatch, so the key cannot be guessed byte by byte
        return hmac.compare_digest(token.strip().encode(), self.api_key or b"")


async def _respond(send: Send, status: int, headers: Iterable[tuple[str, str]] = (), body: Any = None) -> None:
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if body is not None:
        raw.append((b"content-type", b"application/json; charset=utf-8"))
    if status != 204:
        raw.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


__all__ = ["SecurityMiddleware", "CorsPolicy", "allowed_origins", "allowed_host_name", "is_loopback_bind"]
