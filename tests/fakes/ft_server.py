"""A fake of OpenAI's files and fine-tuning endpoints on 127.0.0.1, for `harness finetune openai` tests.

Real HTTP through the real `openai` SDK (multipart upload, cursor pages, error bodies), like
harness/fakeserver.py does for chat completions. A job moves validating_files -> running -> succeeded
(or failed) by one step per `retrieve`, and emits events (including `metrics` events) as it goes.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.openai_server import LoopbackServer

ORG = "org-fake"
TOTAL_STEPS = 3


@dataclass
class FakeJob:
    id: str
    body: dict[str, Any]
    fail: bool
    polls: int = 0
    status: str = "validating_files"
    events: list[dict[str, Any]] = field(default_factory=list)
    fine_tuned_model: str | None = None
    error: dict[str, Any] | None = None
    trained_tokens: int | None = None
    finished_at: int | None = None


class FakeFineTuningServer(LoopbackServer):
    """`fail=True`: the job fails while running, with `error_message`. `trained_tokens`: billed tokens reported."""

    def __init__(self, *, fail: bool = False, error_message: str = "Training file has 3 lines with errors",
                 trained_tokens: int = 12_345):
        self.fail = fail
        self.error_message = error_message
        self.trained_tokens = trained_tokens
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[tuple[str, str]] = []
        self.auth_headers: list[str] = []
        self._lock = threading.Lock()


    # -- the job's script ------------------------------------------------------------------------------------
    def _event(self, job: FakeJob, message: str, *, level: str = "info", type_: str = "message",
               data: dict[str, Any] | None = None) -> None:
        job.events.append({"id": f"ftevent-{job.id[-3:]}-{len(job.events) + 1:03d}", "object": "fine_tuning.job.event",
                           "created_at": int(time.time()), "level": level, "message": message, "type": type_,
                           "data": data or {}})

    def _advance(self, job: FakeJob) -> None:
        """One poll = one step of the job's life."""
        job.polls += 1
        if job.status in ("succeeded", "failed", "cancelled"):
            return
        if job.polls == 1:
            self._event(job, "Files validated, moving job to queued state")
            job.status = "running"
            self._event(job, "Fine-tuning job started")
        elif job.status == "running":
            step = job.polls - 1
            if self.fail and step == 2:
                job.status = "failed"
                job.error = {"code": "invalid_training_file", "message": self.error_message, "param": "training_file"}
                job.finished_at = int(time.time())
                self._event(job, f"Fine-tuning job failed: {self.error_message}", level="error")
                return
            self._event(job, f"Step {step}/{TOTAL_STEPS}: training loss={1.0 / step:.4f}", type_="metrics",
                        data={"step": step, "total_steps": TOTAL_STEPS, "train_loss": 1.0 / step})
            if step >= TOTAL_STEPS:
                suffix = job.body.get("suffix")
                job.fine_tuned_model = f"ft:{job.body['model']}:{ORG}{':' + suffix if suffix else ''}:abc123"
                job.status = "succeeded"
                job.trained_tokens = self.trained_tokens
                job.finished_at = int(time.time())
                self._event(job, f"New fine-tuned model created: {job.fine_tuned_model}")
                self._event(job, "The job has successfully completed")

    def _job_json(self, job: FakeJob) -> dict[str, Any]:
        b = job.body
        epochs = (((b.get("method") or {}).get("supervised") or {}).get("hyperparameters") or {}).get("n_epochs")
        return {
            "id": job.id, "object": "fine_tuning.job", "created_at": int(time.time()), "model": b["model"],
            "organization_id": ORG, "status": job.status, "training_file": b["training_file"],
            "validation_file": b.get("validation_file"), "hyperparameters": {"n_epochs": epochs or "auto",
                                                                              "batch_size": "auto",
                                                                              "learning_rate_multiplier": "auto"},
            "method": b.get("method"), "seed": b.get("seed") or 0, "result_files": [], "error": job.error,
            "fine_tuned_model": job.fine_tuned_model, "finished_at": job.finished_at,
            "trained_tokens": job.trained_tokens, "suffix": b.get("suffix"),
        }

    # -- HTTP --------------------------------------------------------------------------------------------------
    def start(self) -> FakeFineTuningServer:
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, data: Any) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _error(self, status: int, message: str) -> None:
                self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": None}})

            def _record(self) -> str:
                path = urlparse(self.path).path.rstrip("/")
                with server._lock:
                    server.requests.append((self.command, path))
                    server.auth_headers.append(self.headers.get("Authorization", ""))
                return path

            def do_POST(self) -> None:
                path = self._record()
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if path.endswith("/files"):
                    ctype = self.headers.get("Content-Type", "")
                    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                        f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
                    fields: dict[str, Any] = {}
                    for part in msg.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        fields[name] = (part.get_filename(), part.get_payload(decode=True))
                    if "file" not in fields or fields.get("purpose", (None, b""))[1] != b"fine-tune":
                        self._error(400, "expected a file and purpose=fine-tune")
                        return
                    filename, content = fields["file"]
                    with server._lock:
                        fid = f"file-{len(server.files) + 1:03d}"
                        server.files[fid] = {"filename": filename, "content": content, "purpose": "fine-tune"}
                    self._send(200, {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                                     "filename": filename, "purpose": "fine-tune", "status": "processed"})
                    return
                if path.endswith("/fine_tuning/jobs"):
                    body = json.loads(raw or b"{}")
                    for key in ("training_file", "validation_file"):
                        if body.get(key) and body[key] not in server.files:
                            self._error(400, f"invalid {key}: {body[key]}")
                            return
                    with server._lock:
                        job = FakeJob(id=f"ftjob-{len(server.jobs) + 1:03d}", body=body, fail=server.fail)
                        server._event(job, f"Created fine-tuning job: {job.id}")
                        server._event(job, f"Validating training file: {body['training_file']}")
                        server.jobs[job.id] = job
                    self._send(200, server._job_json(job))
                    return
                self._error(404, f"no route POST {path}")

            def do_GET(self) -> None:
                path = self._record()
                parts = path.split("/")
                if "jobs" in parts:
                    i = parts.index("jobs")
                    job = server.jobs.get(parts[i + 1]) if len(parts) > i + 1 else None
                    if job is None:
                        self._error(404, f"no such job {parts[i + 1] if len(parts) > i + 1 else ''}")
                        return
                    if parts[-1] == "events":
                        limit = int(parse_qs(urlparse(self.path).query).get("limit", ["20"])[0])
                        with server._lock:
                            data = list(reversed(job.events))[:limit]  # newest first, like the API
                        self._send(200, {"object": "list", "data": data, "has_more": False})
                        return
                    with server._lock:
                        server._advance(job)
                        payload = server._job_json(job)
                    self._send(200, payload)
                    return
                self._error(404, f"no route GET {path}")

        self._serve(_H)
        return self
