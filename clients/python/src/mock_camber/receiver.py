"""A webhook receiver for tests: records every delivery and checks both signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Union

from standardwebhooks import Webhook, WebhookVerificationError

from .client import WaitTimeout


@dataclass(frozen=True)
class Delivery:
    """One webhook as received: `body` parsed (None if not JSON), `raw` as sent."""

    path: str
    headers: Dict[str, str]  # names lower-case
    raw: bytes
    body: Any
    # The Standard Webhooks signature (checked with the `standardwebhooks` library).
    signature_ok: bool
    # `X-Webhook-Secret`: hex HMAC-SHA256 of the raw body.
    secret_ok: bool
    # What the receiver answered.
    status: int
    received_at: float

    @property
    def verified(self) -> bool:
        """Both signatures check out against the mock's secret."""
        return self.signature_ok and self.secret_ok

    @property
    def attempt(self) -> int:
        return int(self.headers.get("x-camber-attempt", "0"))

    @property
    def delivery_id(self) -> Optional[str]:
        return self.headers.get("x-camber-delivery-id")

    @property
    def event(self) -> Optional[str]:
        return self.headers.get("x-camber-event")

    @property
    def job_id(self) -> Optional[str]:
        """The Camber job id (`camber_job_id` in the body)."""
        return self.body.get("camber_job_id") if isinstance(self.body, dict) else None


def standard_webhook(secret: Union[str, bytes]) -> Webhook:
    """The `standardwebhooks` verifier for a mock secret: a `whsec_…` one is base64,
    any other is used as its own bytes (as the mock does)."""
    if isinstance(secret, str) and not secret.startswith("whsec_"):
        secret = secret.encode()
    return Webhook(secret)


class WebhookReceiver:
    """An HTTP server on a free loopback port; `url`, `respond_with`, `wait_for`, `deliveries`.

    Use it as a context manager, or call `close()`.
    """

    def __init__(self, secret: str, host: str = "127.0.0.1") -> None:
        self.secret = secret
        self._verifier = standard_webhook(secret)
        self._cond = threading.Condition()
        self._deliveries: List[Delivery] = []
        self._statuses: List[int] = [200]
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._next_status()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver._record(self.path, {k.lower(): v for k, v in self.headers.items()}, raw, status)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._server.timeout = None  # handle_request blocks in accept: no polling
        self._closed = False
        port = self._server.server_address[1]
        self.url = f"http://{host}:{port}/webhook"
        self._thread = threading.Thread(target=self._serve, name="webhook-receiver", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # Not serve_forever: its shutdown() waits up to a 0.5 s poll interval.
        while not self._closed:
            self._server.handle_request()

    def respond_with(self, *statuses: int) -> None:
        """Answer the next webhooks with these statuses in turn; the last one repeats."""
        if not statuses:
            raise ValueError("respond_with needs at least one status")
        with self._cond:
            self._statuses = list(statuses)

    def _next_status(self) -> int:
        with self._cond:
            return self._statuses.pop(0) if len(self._statuses) > 1 else self._statuses[0]

    def _record(self, path: str, headers: Dict[str, str], raw: bytes, status: int) -> None:
        try:
            self._verifier.verify(raw, headers, json_parse=False)
            signature_ok = True
        except WebhookVerificationError:
            signature_ok = False
        expected = hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        secret_ok = hmac.compare_digest(expected, headers.get("x-webhook-secret", ""))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        d = Delivery(path, headers, raw, body, signature_ok, secret_ok, status, time.time())
        with self._cond:
            self._deliveries.append(d)
            self._cond.notify_all()

    @property
    def deliveries(self) -> List[Delivery]:
        """Every webhook received so far, in order."""
        with self._cond:
            return list(self._deliveries)

    def wait_for(self, n: int = 1, timeout: float = 10) -> List[Delivery]:
        """Every webhook received, once there are at least `n`; `WaitTimeout` after `timeout` s."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._deliveries) >= n, timeout):
                got = "; ".join(f"{d.event} attempt {d.attempt} → {d.status}" for d in self._deliveries)
                raise WaitTimeout(f"{len(self._deliveries)} of {n} webhooks within {timeout} s at {self.url}: {got}")
            return list(self._deliveries)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Wake the accept with a connection that sends nothing, then let the loop end.
        host, port = self._server.server_address[:2]
        socket.create_connection((str(host), int(port))).close()
        self._thread.join()
        self._server.server_close()

    def __enter__(self) -> "WebhookReceiver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
