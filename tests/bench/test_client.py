"""bench.client: chunked and sized bodies, lines split across chunks, keep-alive reuse, and a connection
the server dropped while it sat in the pool."""

import asyncio

import pytest

from bench.client import ProtocolError, StreamClient


class RawServer:
    """An asyncio TCP server answering each request with the next canned response, counting connections."""

    def __init__(self, responses: list[bytes], close_after: bool = False):
        self.responses = responses
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while self.responses:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.responses.pop(0))
                await writer.drain()
                if self.close_after:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc):
        self.server.close()


def chunked(*parts: bytes) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: application/x-ndjson\r\n\r\n" + body + b"0\r\n\r\n"


def sized(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


async def _lines(client, path="/api/generate"):
    async with client.stream(path, {"model": "m"}) as resp:
        return resp.status_code, [line async for line in resp.lines()]


def test_lines_split_across_chunks_and_connections_kept_alive():
    async def go():
        server = RawServer([chunked(b'{"a":1}\n{"b"', b':2}\n', b'{"c":3}\n'), sized("404 Not Found", b'{"error":"x"}')])
        async with server as url:
            client = StreamClient(url + "/")
            first = await _lines(client)
            async with client.stream("/api/show", {}) as resp:
                second = resp.status_code, await resp.read()
            await client.aclose()
        return server, first, second

    server, first, second = asyncio.run(go())
    assert first == (200, [b'{"a":1}', b'{"b":2}', b'{"c":3}'])
    assert second == (404, b'{"error":"x"}')
    assert server.connections == 1  # the second request reused the first connection
    assert server.requests[0].startswith(b"POST /api/generate HTTP/1.1\r\n")
    assert server.requests[0].endswith(b'{"model": "m"}')


def test_a_connection_dropped_in_the_pool_is_replaced():
    async def go():
        server = RawServer([chunked(b"1\n"), chunked(b"2\n")], close_after=True)
        async with server as url:
            client = StreamClient(url)
            a = await _lines(client)
            await asyncio.sleep(0.05)  # the server has closed that connection by now
            b = await _lines(client)
            await client.aclose()
        return server, a, b

    server, a, b = asyncio.run(go())
    assert (a, b) == ((200, [b"1"]), (200, [b"2"]))
    assert server.connections == 2


def test_a_body_cut_short_and_a_bad_status_line_raise():
    async def go(response):
        async with RawServer([response]) as url:
            client = StreamClient(url)
            try:
                return await _lines(client)
            finally:
                await client.aclose()

    with pytest.raises(asyncio.IncompleteReadError):
        asyncio.run(go(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nshort"))
    with pytest.raises(ProtocolError):
        asyncio.run(go(b"SPDY/9 200 OK\r\n\r\n"))


def test_only_plain_http():
    with pytest.raises(ValueError):
        StreamClient("https://example.org")
