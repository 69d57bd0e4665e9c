"""A loopback OpenAI Batch API: `/v1/files` (multipart upload), `/v1/files/{id}/content`, `/v1/batches`,
`/v1/batches/{id}` (and its `/cancel`), plus `/v1/models`, over real HTTP so the harness's real SDK calls are
exercised.

A batch goes validating -> in_progress -> finalizing -> completed on a clock (`validate_s`, `turnaround_s`,
`finalize_s`), its request_counts growing while in progress. Each line's chat body is answered by a handler
like FakeOpenAIServer's (a Reply: non-200 statuses go to the error file, as OpenAI does); `expire` marks lines
that never ran (`batch_expired` errors, batch status `expired`). The output file lists the lines in shuffled
order. Validation enforces the API's limits: 50,000 requests and 200 MB per input file, unique custom_ids,
one endpoint.

    python -m tests.fakes.batch_server --turnaround-s 10    # prints its base URL, serves until killed
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.openai_server import Handler, LoopbackServer, Reply, serve_until_interrupted

MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """{field name: (file name, bytes)} of a multipart/form-data body."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        out[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return out


class FakeBatchServer(LoopbackServer):
    def __init__(self, handler: Handler | None = None, *, models: list[str] | None = None,
                 validate_s: float = 0.0, turnaround_s: float = 0.5, finalize_s: float = 0.0,
                 expire: Callable[[str], bool] | None = None, seed: int = 0):
        self.handler = handler or (lambda body: Reply())
        self.models = models or ["fake-model"]
        self.validate_s, self.turnaround_s, self.finalize_s = validate_s, turnaround_s, finalize_s
        self.expire = expire or (lambda custom_id: False)
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.created: list[str] = []  # batch ids in creation order
        self.polls = 0
        self.chat_bodies = 0  # chat bodies answered (inside batches)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    # -- files -------------------------------------------------------------------------------------------
    def add_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        fid = f"file-{uuid.uuid4().hex[:24]}"
        meta = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}
        with self._lock:
            self.files[fid] = {"meta": meta, "data": data}
        return meta

    # -- batches -----------------------------------------------------------------------------------------
    def create_batch(self, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        fid = req.get("input_file_id")
        if fid not in self.files:
            return 404, {"error": {"message": f"No such File object: {fid}", "type": "invalid_request_error"}}
        if req.get("endpoint") != "/v1/chat/completions" or req.get("completion_window") != "24h":
            return 400, {"error": {"message": "bad endpoint or completion_window", "type": "invalid_request_error"}}
        now = time.time()
        bid = f"batch_{uuid.uuid4().hex[:24]}"
        batch = {"id": bid, "object": "batch", "endpoint": req["endpoint"], "errors": None, "input_file_id": fid,
                 "completion_window": "24h", "status": "validating", "output_file_id": None, "error_file_id": None,
                 "created_at": int(now), "in_progress_at": None, "expires_at": int(now) + 86400,
                 "finalizing_at": None, "completed_at": None, "failed_at": None, "expired_at": None,
                 "cancelling_at": None, "cancelled_at": None,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": req.get("metadata")}
        lines, errors = self._validate(self.files[fid]["data"])
        with self._lock:
            self.batches[bid] = {"obj": batch, "t0": time.monotonic(), "lines": lines, "errors": errors,
                                 "cancelled": False}
            self.created.append(bid)
        return 200, batch

    def _validate(self, data: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if len(data) > MAX_BYTES:
            return [], [{"code": "too_large", "message": f"input file is {len(data)} bytes, over {MAX_BYTES}"}]
        lines, seen, errors = [], set(), []
        for n, raw in enumerate(data.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                errors.append({"code": "invalid_json_line", "message": "not JSON", "line": n})
                continue
            if line.get("url") != "/v1/chat/completions" or line.get("method") != "POST":
                errors.append({"code": "invalid_url", "message": f"url {line.get('url')!r}", "line": n})
            if line.get("custom_id") in seen:
                errors.append({"code": "duplicate_custom_id", "message": line.get("custom_id"), "line": n})
            seen.add(line.get("custom_id"))
            lines.append(line)
        if len(lines) > MAX_REQUESTS:
            errors.append({"code": "too_many_requests", "message": f"{len(lines)} requests, over {MAX_REQUESTS}"})
        return lines, errors[:10]

    def advance(self, bid: str) -> dict[str, Any]:
        """The batch as of now: its status follows the clock; outputs are written when it finalizes."""
        with self._lock:
            b = self.batches[bid]
            obj = b["obj"]
            if obj["status"] in TERMINAL:
                return obj
            age = time.monotonic() - b["t0"]
            now = int(time.time())
            if b["errors"]:
                obj.update(status="failed", failed_at=now, errors={"object": "list", "data": b["errors"]})
                return obj
            total = len(b["lines"])
            obj["request_counts"]["total"] = total
            if b["cancelled"]:
                self._finish(b, "cancelled", upto=int(total * min(1.0, max(0.0, (age - self.validate_s)
                                                                           / max(self.turnaround_s, 1e-9)))))
                return obj
            if age < self.validate_s:
                return obj
            obj["in_progress_at"] = obj["in_progress_at"] or now
            if age < self.validate_s + self.turnaround_s:
                obj["status"] = "in_progress"
                share = (age - self.validate_s) / max(self.turnaround_s, 1e-9)
                done = int(total * share)
                failed = sum(1 for line in b["lines"][:done] if self._fails(line))
                obj["request_counts"].update(completed=done - failed, failed=failed)
                return obj
            if age < self.validate_s + self.turnaround_s + self.finalize_s:
                obj["status"] = "finalizing"
                obj["finalizing_at"] = obj["finalizing_at"] or now
                return obj
            expired = any(self.expire(line["custom_id"]) for line in b["lines"])
            self._finish(b, "expired" if expired else "completed", upto=total)
            return obj

    def _fails(self, line: dict[str, Any]) -> bool:
        return self.expire(line["custom_id"])

    def _finish(self, b: dict[str, Any], status: str, upto: int) -> None:
        """Answer the lines (the first `upto` of them; later ones expired or cancelled) into the output and
        error files, shuffled, as the API returns them in any order."""
        obj = b["obj"]
        out, err = [], []
        for i, line in enumerate(b["lines"]):
            cid = line["custom_id"]
            rid = f"req_{uuid.uuid4().hex[:16]}"
            if i >= upto or self.expire(cid):
                code = "batch_cancelled" if status == "cancelled" else "batch_expired"
                err.append({"id": f"batch_req_{i}", "custom_id": cid, "response": None,
                            "error": {"code": code, "message": "This request could not be executed before the "
                                      "completion window expired." if code == "batch_expired" else
                                      "The batch was cancelled before this request ran."}})
                continue
            self.chat_bodies += 1
            reply = self.handler(line["body"])
            if reply.status != 200:
                body = {"error": {"message": f"injected status {reply.status}", "type": "fake", "code": None}}
                err.append({"id": f"batch_req_{i}", "custom_id": cid, "error": None,
                            "response": {"status_code": reply.status, "request_id": rid, "body": body}})
                continue
            out.append({"id": f"batch_req_{i}", "custom_id": cid, "error": None,
                        "response": {"status_code": 200, "request_id": rid, "body": chat_body(line["body"], reply)}})
        self._rng.shuffle(out)
        self._rng.shuffle(err)
        now = int(time.time())
        if out:
            obj["output_file_id"] = self._store_jsonl(out, f"{obj['id']}_output.jsonl")
        if err:
            obj["error_file_id"] = self._store_jsonl(err, f"{obj['id']}_error.jsonl")
        obj["request_counts"] = {"total": len(b["lines"]), "completed": len(out), "failed": len(err)}
        obj["status"] = status
        obj[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[status]] = now

    def _store_jsonl(self, rows: list[dict[str, Any]], name: str) -> str:
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
        fid = f"file-{uuid.uuid4().hex[:24]}"
        self.files[fid] = {"meta": {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                    "filename": name, "purpose": "batch_output", "status": "processed"},
                           "data": data}
        return fid

    def start(self) -> FakeBatchServer:
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _path(self) -> list[str]:
                path = self.path.split("?", 1)[0].strip("/").split("/")
                return path[1:] if path and path[0] == "v1" else path

            def do_GET(self) -> None:
                p = self._path()
                if p == ["models"]:
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"}
                                                                for m in server.models]})
                elif p == ["batches"]:
                    data = [server.advance(bid) for bid in reversed(server.created)]
                    self._send(200, {"object": "list", "data": data, "has_more": False,
                                     "first_id": data[0]["id"] if data else None,
                                     "last_id": data[-1]["id"] if data else None})
                elif len(p) == 2 and p[0] == "batches" and p[1] in server.batches:
                    server.polls += 1
                    self._send(200, server.advance(p[1]))
                elif len(p) == 3 and p[0] == "files" and p[2] == "content" and p[1] in server.files:
                    self._send(200, server.files[p[1]]["data"], "application/octet-stream")
                elif len(p) == 2 and p[0] == "files" and p[1] in server.files:
                    self._send(200, server.files[p[1]]["meta"])
                else:
                    self._send(404, {"error": {"message": f"not found: {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                p = self._path()
                if p == ["files"]:
                    fields = parse_multipart(self.headers.get("Content-Type", ""), raw)
                    purpose = fields.get("purpose", (None, b""))[1].decode()
                    if "file" not in fields or purpose != "batch":
                        self._send(400, {"error": {"message": "need a file and purpose=batch"}})
                        return
                    name, data = fields["file"]
                    self._send(200, server.add_file(data, name or "upload.jsonl", purpose))
                elif p == ["batches"]:
                    status, payload = server.create_batch(json.loads(raw or b"{}"))
                    self._send(status, payload)
                elif len(p) == 3 and p[0] == "batches" and p[2] == "cancel" and p[1] in server.batches:
                    with server._lock:
                        b = server.batches[p[1]]
                        if b["obj"]["status"] not in TERMINAL:
                            b["cancelled"] = True
                            b["obj"]["status"] = "cancelling"
                    self._send(200, server.advance(p[1]))
                else:
                    self._send(404, {"error": {"message": f"not found: {self.path}"}})

        self._serve(_H)
        return self


def chat_body(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    prompt = reply.prompt_tokens
    if prompt is None:
        prompt = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    completion = reply.completion_tokens if reply.completion_tokens is not None else max(1, len(reply.text.split()))
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", "fake-model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                         "finish_reason": reply.finish_reason}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--validate-s", type=float, default=0.0)
    p.add_argument("--turnaround-s", type=float, default=10.0)
    p.add_argument("--finalize-s", type=float, default=0.0)
    p.add_argument("--text", default='{"intent": "card_arrival"}')
    p.add_argument("--model", action="append", default=None)
    args = p.parse_args(argv)
    reply = Reply(text=args.text, prompt_tokens=60, completion_tokens=8)
    serve_until_interrupted(FakeBatchServer(lambda body: reply, models=args.model or ["gpt-4o-mini"],
                                            validate_s=args.validate_s, turnaround_s=args.turnaround_s,
                                            finalize_s=args.finalize_s))


if __name__ == "__main__":
    main()
