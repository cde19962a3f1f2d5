"""A lean HTTP/1.1 client for JSON POSTs to OpenAI-compatible servers, on asyncio protocols.

Why not a general HTTP library: with hundreds of requests in flight, replies arrive in waves, and
the time a client spends per reply (parsing it, waking the waiting task, sending the next request)
is added to the latency of every request behind it in the wave. This client does only what the
OpenAI protocol needs — keep-alive connections per endpoint, ``Content-Length`` and chunked
bodies, TLS, timeouts — in a protocol object that parses a reply as its bytes arrive, so a request
costs a fraction of a general client's CPU. Replies with any other framing (e.g. compressed bodies,
never asked for: no ``Accept-Encoding`` is sent) are rejected with a clear error.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import urlsplit

__all__ = ["HTTPError", "HTTPPool"]

_MAX_HEADER = 64 * 1024


class HTTPError(Exception):
    """A transport failure: connection refused or reset, a timeout, a malformed reply."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, pool: HTTPPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.head_done = False
        self.length = -1  # Content-Length, or -1
        self.chunked = False
        self.keep_alive = True
        self.body = bytearray()

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            reason = f": {exc}" if exc else ""
            self.waiter.set_exception(HTTPError(f"connection closed before the reply{reason}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            try:
                self._parse()
            except ValueError as exc:  # a bad status code, length or chunk size
                raise HTTPError(f"malformed reply: {exc}") from None
        except HTTPError as exc:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(exc)
            self.close()

    # -- parsing ------------------------------------------------------------------------------
    def _parse(self) -> None:
        buf = self.buffer
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEADER:
                    raise HTTPError("reply headers too large")
                return
            lines = bytes(buf[:end]).split(b"\r\n")
            del buf[: end + 4]
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise HTTPError(f"not an HTTP/1.x reply: {lines[0][:80]!r}")
            self.status = int(parts[1])
            self.keep_alive = parts[0] != b"HTTP/1.0"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                key = name.strip().lower()
                value = value.strip()
                if key == b"content-length":
                    self.length = int(value)
                elif key == b"transfer-encoding":
                    self.chunked = b"chunked" in value.lower()
                elif key == b"connection":
                    self.keep_alive = value.lower() != b"close"
                elif key == b"content-encoding" and value.lower() not in (b"identity", b""):
                    raise HTTPError(f"compressed reply ({value.decode()}) not supported")
            self.head_done = True
            if not self.chunked and self.length < 0:
                self.keep_alive = False  # body ends when the server closes the connection
        if self.chunked:
            while True:
                line_end = buf.find(b"\r\n")
                if line_end < 0:
                    return
                size = int(bytes(buf[:line_end]).split(b";")[0], 16)
                if size == 0:
                    if buf.find(b"\r\n\r\n", line_end) < 0:
                        return  # the (empty) trailer section is not complete yet
                    buf.clear()
                    self._finish()
                    return
                if len(buf) < line_end + 2 + size + 2:
                    return
                self.body += buf[line_end + 2 : line_end + 2 + size]
                del buf[: line_end + 2 + size + 2]
        elif 0 <= self.length <= len(buf):
            self.body += buf[: self.length]
            del buf[: self.length]
            self._finish()
        # else: read until the connection closes (handled by eof_received)

    def eof_received(self) -> bool | None:
        if self.head_done and not self.chunked and self.length < 0:
            self.body += self.buffer
            self.buffer.clear()
            self._finish()
        return None

    def _finish(self) -> None:
        waiter, status, body = self.waiter, self.status, bytes(self.body)
        keep = self.keep_alive
        self.waiter = None
        self._reset()
        if not keep:
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))
        if keep and not self.closed:
            self.pool._release(self)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HTTPPool:
    """Keep-alive connections to one server (``base_url``), any number of requests in flight
    (one per connection; connections are opened as needed and reused)."""

    def __init__(
        self, base_url: str, headers: dict[str, str], timeout_s: float, max_idle: int = 1024
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if url.scheme == "https" else None
        self.prefix = url.path.rstrip("/")
        host_header = self.host if url.port is None else f"{self.host}:{self.port}"
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = (
            f"Host: {host_header}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nConnection: keep-alive\r\n{extra}"
        ).encode("latin-1")
        self.timeout_s = timeout_s
        self.max_idle = max_idle
        self._idle: deque[_Connection] = deque()

    def _release(self, conn: _Connection) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: _Connection(self),
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.host if self.ssl else None,
            )
        except OSError as exc:
            raise HTTPError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        return conn

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``prefix + path``; ``(status, reply body)``.

        Raises :class:`HTTPError` on connection failures, timeouts and malformed replies."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        conn = await self._connection()
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        conn.waiter = waiter
        request = (
            b"POST "
            + (self.prefix + path).encode()
            + b" HTTP/1.1\r\n"
            + self._head
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        assert conn.transport is not None
        conn.transport.write(request)
        timer = loop.call_at(deadline, _expire, waiter, conn, self.timeout_s)
        try:
            return await waiter
        finally:
            timer.cancel()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _expire(waiter: asyncio.Future[tuple[int, bytes]], conn: _Connection, timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(HTTPError(f"timed out after {timeout:g} s"))
        conn.close()  # a late reply must not be read as the next request's
