"""A lean HTTP/1.1 client for the one thing the measurement needs: POST JSON, read NDJSON lines as they come.

On a 2-core machine the client shares the CPU with the server it measures: httpx (pure-Python
h11 parsing of every chunk) cost about 120 µs of CPU per streamed token here, which the server then
lacks; this client, reading the chunked body with asyncio streams, about 40 µs (vllama at 32
concurrent streams: 2.0 % of the machine against 0.6 %). Connections are kept alive in a pool.
Plain http only; https targets go through httpx (`--http-client httpx`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 as expected."""


class Response:
    def __init__(self, conn: Connection, status: int, headers: dict[str, str]):
        self.reader = conn[0]
        self.status_code = status
        self.headers = headers
        self.complete = False  # the whole body was read: the connection may be reused

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await self.reader.readline()
                try:
                    size = int(size_line.split(b";")[0], 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {size_line[:40]!r}") from None
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self.complete = True
                    return
                data = await self.reader.readexactly(size + 2)
                yield data[:-2]
        elif "content-length" in self.headers:
            left = int(self.headers["content-length"])
            while left > 0:
                data = await self.reader.read(min(left, 65536))
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(data)
                yield data
            self.complete = True
        else:  # delimited by the server closing the connection
            while data := await self.reader.read(65536):
                yield data

    async def lines(self) -> AsyncIterator[bytes]:
        pending = b""
        async for data in self.chunks():
            pending += data
            if b"\n" in pending:
                *done, pending = pending.split(b"\n")
                for line in done:
                    yield line
        if pending:
            yield pending

    async def read(self) -> bytes:
        return b"".join([data async for data in self.chunks()])


class StreamClient:
    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the lean client speaks plain http only: {url}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self._idle: list[Connection] = []

    async def _connect(self, fresh: bool) -> tuple[Connection, bool]:
        while self._idle and not fresh:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return (reader, writer), True
            writer.close()
        return await asyncio.open_connection(self.host, self.port), False

    async def _send(self, conn: Connection, path: str, body: bytes) -> tuple[int, dict[str, str]]:
        reader, writer = conn
        writer.write(f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError(f"bad status line {status_line[:60]!r}")
        headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    @asynccontextmanager
    async def stream(self, path: str, payload: dict[str, Any]) -> AsyncIterator[Response]:
        body = json.dumps(payload).encode()
        conn, reused = await self._connect(fresh=False)
        try:
            status, headers = await self._send(conn, path, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            conn[1].close()
            if not reused:
                raise
            conn, _ = await self._connect(fresh=True)  # the server dropped an idle connection: once more
            status, headers = await self._send(conn, path, body)
        except BaseException:
            conn[1].close()
            raise
        response = Response(conn, status, headers)
        try:
            yield response
        finally:
            if response.complete and headers.get("connection", "").lower() != "close":
                self._idle.append(conn)
            else:
                conn[1].close()

    async def aclose(self) -> None:
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()
