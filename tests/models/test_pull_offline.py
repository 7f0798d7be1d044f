"""A pull that reaches no server fails in Go's words, as Ollama's does (`pull model manifest:
Get "URL": dial tcp: lookup HOST: no such host`), not in Python's (`[Errno -2] Name or service
not known`). Nothing listens on the discard port; a `.invalid` name never resolves (RFC 2606)."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from tests.models.conftest import REPO
from vllama.models.net_errors import go_request_error
from vllama.models.pull import PullError, pull
from vllama.models.store import ModelStore


def failed_pull(store: ModelStore, name: str, **kwargs) -> str:
    async def go() -> None:
        async for _ in pull(store, name, **kwargs):
            pass

    with pytest.raises(PullError) as err:
        asyncio.run(go())
    return str(err.value)


def test_a_catalogue_name_with_no_such_host(store):
    message = failed_pull(store, "tiny", endpoint="http://hub.vllama-test.invalid")
    assert message == (f'pull model manifest: Get "http://hub.vllama-test.invalid/api/models/{REPO}": '
                       "dial tcp: lookup hub.vllama-test.invalid: no such host")
    assert "Errno" not in message


def test_a_catalogue_name_with_the_connection_refused(store):
    message = failed_pull(store, "tiny", endpoint="http://127.0.0.1:9")
    assert message == (f'pull model manifest: Get "http://127.0.0.1:9/api/models/{REPO}": '
                       "dial tcp 127.0.0.1:9: connect: connection refused")


def chained(outer: Exception, cause: BaseException) -> Exception:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise outer from inner
    except Exception as err:
        return err


@pytest.mark.parametrize("cause, detail", [
    (socket.gaierror(-2, "Name or service not known"), "dial tcp: lookup example.org: no such host"),
    (socket.gaierror(-3, "Temporary failure in name resolution"), "dial tcp: lookup example.org: no such host"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
     "dial tcp example.org:443: connect: connection refused"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "dial tcp example.org:443: connect: network is unreachable"),
    (TimeoutError("timed out"), "dial tcp example.org:443: i/o timeout"),
    (ValueError("something else"), "wrapper"),
])
def test_go_words_for_each_cause(cause, detail):
    err = chained(RuntimeError("wrapper"), cause)
    assert go_request_error("GET", "https://example.org/v2/x", err) == f'Get "https://example.org/v2/x": {detail}'
