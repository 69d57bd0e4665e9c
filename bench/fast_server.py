"""A minimal asyncio OpenAI-compatible server for benchmarks: one fixed JSON answer, an optional delay.

The thread-per-connection test server (harness/fakeserver.py) costs more CPU per request than the client
under test, which caps both the bare loop and the harness below the ideal; this one stays out of the way.

    python bench/fast_server.py --delay-ms 100     # prints its base URL, serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time


def build_body(text: str) -> bytes:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()), "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 60, "completion_tokens": 8, "total_tokens": 68},
    }).encode()


MODELS = json.dumps({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}).encode()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes, delay: float) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip())
            if length:
                await reader.readexactly(length)
            if head.startswith(b"GET"):
                payload = MODELS
            else:
                if delay:
                    await asyncio.sleep(delay)
                payload = body
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(delay_ms: float, text: str) -> None:
    body = build_body(text)
    server = await asyncio.start_server(lambda r, w: handle(r, w, body, delay_ms / 1000), "127.0.0.1", 0,
                                        backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--text", default='{"intent": "card_arrival"}')
    args = p.parse_args()
    try:
        asyncio.run(serve(args.delay_ms, args.text))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
