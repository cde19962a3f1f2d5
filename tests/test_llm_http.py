"""The lean HTTP/1.1 client against a raw socket server sending hand-written replies: every
framing the OpenAI protocol meets (Content-Length, chunked, close-delimited, HTTP/1.0),
keep-alive reuse, a server closing idle connections, timeouts and malformed replies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from recoworld.llm.http import HTTPError, HTTPPool

Reply = Callable[[int], bytes | None]  # request number -> raw reply (None: close, say nothing)


async def _serve(reply: Reply) -> tuple[asyncio.Server, list[int]]:
    counter = [0]
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break  # the client closed the connection
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            n = counter[0]
            counter[0] += 1
            raw = reply(n)
            if raw is None:
                break
            writer.write(raw)
            await writer.drain()
            if b"Connection: close" in raw or b"HTTP/1.0" in raw:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, connections


def _run(reply: Reply, requests: int = 3, timeout: float = 2.0) -> tuple[list, int]:
    async def main() -> tuple[list, int]:
        server, connections = await _serve(reply)
        port = server.sockets[0].getsockname()[1]
        pool = HTTPPool(f"http://127.0.0.1:{port}/v1", {"Authorization": "Bearer x"}, timeout)
        out: list = []
        for _ in range(requests):
            try:
                out.append(await pool.post("/chat/completions", b'{"a": 1}'))
            except HTTPError as exc:
                out.append(exc)
        pool.close()
        server.close()
        return out, len(connections)

    return asyncio.run(main())


def _length(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_content_length_replies_reuse_one_connection() -> None:
    out, connections = _run(lambda n: _length(b'{"n": %d}' % n))
    assert out == [(200, b'{"n": 0}'), (200, b'{"n": 1}'), (200, b'{"n": 2}')]
    assert connections == 1


def test_chunked_replies_with_and_without_trailers() -> None:
    def reply(n: int) -> bytes:
        trailer = b"X-T: 1\r\n" if n == 1 else b""
        return (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'4\r\n{"n"\r\n4;ext=1\r\n: %d}\r\n0\r\n%s\r\n' % (n, trailer)
        )

    out, connections = _run(reply)
    assert [o[1] for o in out] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert connections == 1


def test_close_delimited_and_http10_replies_open_new_connections() -> None:
    def reply(n: int) -> bytes:
        if n % 2:
            return b'HTTP/1.0 200 OK\r\n\r\n{"n": %d}' % n
        return b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"n": %d}' % n

    out, connections = _run(reply)
    assert out == [(200, b'{"n": 0}'), (200, b'{"n": 1}'), (200, b'{"n": 2}')]
    assert connections == 3


def test_error_status_and_body_come_back() -> None:
    out, _ = _run(lambda n: b"HTTP/1.1 429 Too Many\r\nContent-Length: 2\r\n\r\n{}", requests=1)
    assert out == [(429, b"{}")]


def test_a_dropped_request_is_a_transport_error_and_the_next_one_reconnects() -> None:
    out, connections = _run(lambda n: None if n == 0 else _length(b"ok"), requests=2)
    assert isinstance(out[0], HTTPError)
    assert "closed before the reply" in str(out[0])
    assert out[1] == (200, b"ok")
    assert connections == 2


def test_timeouts_malformed_and_compressed_replies_are_errors() -> None:
    out, _ = _run(lambda n: b"", requests=1, timeout=0.3)  # server answers nothing
    assert isinstance(out[0], HTTPError)
    assert "timed out" in str(out[0])
    out, _ = _run(lambda n: b"SMTP ready\r\n\r\n", requests=1)
    assert "not an HTTP/1.x reply" in str(out[0])
    out, _ = _run(lambda n: _length(b"xx", b"Content-Encoding: gzip\r\n"), requests=1)
    assert "compressed reply" in str(out[0])
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    out, _ = _run(lambda n: bad, requests=1)
    assert "malformed reply" in str(out[0])


def test_connection_refused_is_a_transport_error() -> None:
    from recoworld.llm.stub import free_port

    async def main() -> HTTPError | None:
        pool = HTTPPool(f"http://127.0.0.1:{free_port()}/v1", {}, 1.0)
        try:
            await pool.post("/x", b"{}")
        except HTTPError as exc:
            return exc
        return None

    error = asyncio.run(main())
    assert error is not None
    assert "cannot connect" in str(error)
    with pytest.raises(ValueError, match="not an http"):
        HTTPPool("ftp://x", {}, 1.0)
