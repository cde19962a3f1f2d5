"""A small OpenAI-compatible stub server, for tests and benchmarks of the LLM path.

It answers ``POST /v1/chat/completions`` (and ``GET /v1/models``) after a fixed delay, at most
``concurrency`` requests at a time (the others queue, as on a real server), with replies that
are scripted or derived from the request's JSON schema, and it can inject faults: HTTP 500 or 429
on chosen requests, truncated JSON, replies slower than any timeout. It is plain ``asyncio`` (no
dependency), so it also runs where no real model can. Run it standalone::

    python -m recoworld.llm.stub --port 8799 --delay 0.2 --concurrency 64

It is a stand-in for measuring the client and for fault tests; the real-server tests use
llama.cpp (see ``docs/llm-users.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StubServer", "example_for", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (for starting a server on it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def example_for(schema: Mapping[str, Any] | bool) -> Any:
    """A small value satisfying ``schema`` (the subset recoworld's prompts use: ``enum``,
    ``const``, ``anyOf``, objects, arrays with ``items`` or ``prefixItems``, scalars)."""
    if isinstance(schema, bool):  # ``true`` accepts anything; ``false`` is never reached
        return None
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "anyOf" in schema:
        return example_for(schema["anyOf"][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example_for(props[name]) for name in schema.get("required", props)}
    if kind == "array":
        fixed = [example_for(item) for item in schema.get("prefixItems", [])]
        items = schema.get("items", {})
        if items is False:
            return fixed
        extra = max(int(schema.get("minItems", 1)) - len(fixed), 0)
        return fixed + [example_for(items) for _ in range(extra)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "ok" if kind == "string" else None


@dataclass
class StubServer:
    """The stub's behaviour, and the server itself (:meth:`start` in a background thread).

    Attributes:
        delay_s: time each request takes once it is being served.
        concurrency: requests served at once; the rest wait their turn.
        reply: ``f(request_body) -> str`` giving the reply text (default: JSON from the
            request's schema, else a sentence).
        faults: ``f(n) -> None | "500" | "429" | "truncate" | "hang" | "drop" | "garbage"`` for
            the n-th request (0-based): fail it, cut its JSON, never answer in time, close the
            connection, or answer 200 with a body that is not JSON.
        prompt_tokens / completion_tokens: the usage reported per reply.
        received / served / peak: requests received, answered with a completion, and the most
            in the server at once.
        reject_formats: ``response_format`` types answered with HTTP 400, as by servers that
            do not support them.
    """

    delay_s: float = 0.0
    concurrency: int = 1_000_000
    reply: Callable[[dict[str, Any]], str] | None = None
    faults: Callable[[int], str | None] | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5
    reject_formats: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    received: int = 0
    served: int = 0
    active: int = 0
    peak: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    keep_bodies: bool = True

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> StubServer:
        """Serve on a background thread; :attr:`port` is set when this returns."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, backlog=4096)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._gate = asyncio.Semaphore(self.concurrency)
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="llm-stub", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def stop(self) -> None:
        async def shutdown() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP -------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # answer at once: no Nagle delay, no delayed ACK stalling clients
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if sock is not None and hasattr(socket, "TCP_QUICKACK"):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self._respond(method, path, body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _respond(
        self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        if method == "GET" and path.endswith("/models"):
            self._send(writer, 200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
            return True
        if not path.endswith("/chat/completions"):
            self._send(writer, 404, {"error": {"message": f"no route {path}"}})
            return True
        n = self.received
        self.received += 1
        request = json.loads(body or b"{}")
        if self.keep_bodies:
            self.bodies.append(request)
        fault = self.faults(n) if self.faults else None
        kind = (request.get("response_format") or {}).get("type")
        if kind in self.reject_formats:
            message = f"response_format type {kind!r} is not supported"
            self._send(writer, 400, {"error": {"message": message, "type": "invalid_request"}})
            return True
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            return await self._serve(request, fault, writer)
        finally:
            self.active -= 1

    async def _serve(
        self, request: dict[str, Any], fault: str | None, writer: asyncio.StreamWriter
    ) -> bool:
        async with self._gate:
            await asyncio.sleep(self.delay_s)
            if fault == "hang":
                await asyncio.sleep(3600)
            if fault == "drop":
                return False
            if fault in ("500", "429"):
                message = "injected failure" if fault == "500" else "slow down"
                self._send(writer, int(fault), {"error": {"message": message, "type": "stub"}})
                return True
            if fault == "garbage":  # a 200 whose body is not JSON at all
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 9\r\nConnection: keep-alive\r\n\r\nnot json!"
                )
                return True
            text = self._text(request)
            if fault == "truncate":
                text = text[: max(1, len(text) // 2)]
            self.served += 1
            self._send(writer, 200, self._completion(request, text))
        return True

    def _text(self, request: dict[str, Any]) -> str:
        if self.reply is not None:
            return self.reply(request)
        fmt = request.get("response_format") or {}
        schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema")
        for message in request.get("messages", []):  # a schema given in words
            _, marker, rest = str(message.get("content", "")).partition("JSON schema: ")
            if marker and not schema:
                schema = json.loads(rest)
        if schema:
            return json.dumps(example_for(schema))
        return "A reply from the stub."

    def _completion(self, request: dict[str, Any], text: str) -> dict[str, Any]:
        return {
            "id": f"stub-{self.served}",
            "object": "chat.completion",
            "created": 0,
            "model": request.get("model", "stub"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            },
        }

    @staticmethod
    def _send(writer: asyncio.StreamWriter, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(status, "Error")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n".encode()
            + data
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=64, help="requests served at once")
    opts = parser.parse_args()
    server = StubServer(
        delay_s=opts.delay,
        concurrency=opts.concurrency,
        host=opts.host,
        port=opts.port,
        keep_bodies=False,
    ).start()
    print(f"stub serving on {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
