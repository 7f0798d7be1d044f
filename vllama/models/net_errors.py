"""A failed HTTP request in the words of Go's net/http client, which Ollama's errors carry:
`Get "https://registry.ollama.ai/v2/...": dial tcp: lookup registry.ollama.ai: no such host`.

Python's own text (`[Errno -2] Name or service not known`) names neither the URL nor the host;
the cause is found in the exception's chain (socket.gaierror, ConnectionRefusedError, ...).
"""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit

_CONNECT = {
    errno.ECONNREFUSED: "connection refused",
    errno.ENETUNREACH: "network is unreachable",
    errno.EHOSTUNREACH: "no route to host",
    errno.ECONNRESET: "connection reset by peer",
}


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _dial(err: BaseException, host: str, port: int) -> str | None:
    """Go's `dial tcp ...` text for the first cause it knows, else None."""
    for cause in _chain(err):
        if isinstance(cause, socket.gaierror):
            return f"dial tcp: lookup {host}: no such host"
        if isinstance(cause, TimeoutError):  # socket.timeout too
            return f"dial tcp {host}:{port}: i/o timeout"
        if isinstance(cause, OSError) and cause.errno in _CONNECT:
            return f"dial tcp {host}:{port}: connect: {_CONNECT[cause.errno]}"
    return None


def go_request_error(method: str, url: str, err: BaseException) -> str:
    """`<Method> "<url>": <what failed>`, Go's url.Error for a request that got no answer."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 443 if parts.scheme == "https" else 80
    detail = _dial(err, host, port) or str(err) or type(err).__name__
    return f'{method[:1].upper()}{method[1:].lower()} "{url}": {detail}'
