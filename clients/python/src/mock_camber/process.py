"""Find the mock-camber binary, start it on a free port, stop it."""

from __future__ import annotations

import base64
import os
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Iterable, List, Optional, Sequence

from .client import Admin

BUILD_HINT = "cargo build --release -p mock-camber"
# Fast stages and retries so tests wait milliseconds, not seconds; a test
# wanting slower ones passes `stage_ms` in the job's scenario.
DEFAULT_ARGS = (
    "--stage-ms", "1",
    "--retry-schedule", "50ms,100ms,200ms,400ms,800ms",
    "--delivery-timeout", "2s",
)  # fmt: skip
# Variables the binary reads that would change what tests see (a fixed key
# list, an admin token, another secret): the spawned mock gets none of them.
_STRIPPED_ENV = ("CAMBER_API_KEYS", "WEBHOOK_SECRET")


def _die_with_parent() -> None:  # pragma: no cover (runs in the child, before exec)
    """Linux: the mock gets SIGTERM if the test process dies first (a killed pytest or xdist
    worker leaves no mock behind)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class BinaryNotFound(Exception):
    pass


def find_binary(search_from: Iterable[Path] = ()) -> str:
    """`MOCK_CAMBER_BIN`, else `mock-camber` on PATH, else `target/{release,debug}/mock-camber`
    in the nearest directory above any of `search_from` (and the current one) that has one."""
    env = os.environ.get("MOCK_CAMBER_BIN")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return os.path.abspath(env)
        raise BinaryNotFound(f"MOCK_CAMBER_BIN={env} is not an executable file; build it with `{BUILD_HINT}`")
    on_path = shutil.which("mock-camber")
    if on_path:
        return on_path
    looked: List[str] = []
    for start in [*search_from, Path.cwd()]:
        for d in [start.resolve(), *start.resolve().parents]:
            for profile in ("release", "debug"):
                candidate = d / "target" / profile / "mock-camber"
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return str(candidate)
            if (d / "Cargo.toml").is_file() or (d / ".git").exists():  # the repository's root
                looked.append(f"{d}/target/{{release,debug}}/mock-camber")
                break
        else:
            looked.append(f"{start.resolve()}/target/{{release,debug}}/mock-camber or above")
    where = ", ".join(dict.fromkeys(looked))
    raise BinaryNotFound(
        f"mock-camber binary not found: MOCK_CAMBER_BIN is unset, none on PATH, none at {where}; "
        f"build it with `{BUILD_HINT}` (or set MOCK_CAMBER_BIN, or MOCK_CAMBER_URL for a running mock)"
    )


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class MockCamber(Admin):
    """A mock-camber instance: its `url`, the admin API, its webhook secret.

    `MockCamber.start()` runs the binary (stopped by `stop()` or leaving a
    `with` block); `MockCamber.connect(url)` uses one that is already running.
    """

    def __init__(
        self,
        url: str,
        *,
        admin_token: Optional[str] = None,
        webhook_secret: str = "dev-webhook-secret",
        process: Optional["subprocess.Popen[bytes]"] = None,
        log: Optional[IO[bytes]] = None,
        startup_seconds: Optional[float] = None,
        verify: Any = None,
    ) -> None:
        super().__init__(url, admin_token, verify=verify)
        self.webhook_secret = webhook_secret
        self.process = process
        self.startup_seconds = startup_seconds
        self._log = log

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        admin_token: Optional[str] = None,
        webhook_secret: str = "dev-webhook-secret",
        verify: Any = None,
    ) -> "MockCamber":
        """A mock already running at `url` (`verify`: see `Admin`)."""
        return cls(url, admin_token=admin_token, webhook_secret=webhook_secret, verify=verify)

    @classmethod
    def start(
        cls,
        binary: Optional[str] = None,
        *,
        args: Sequence[str] = DEFAULT_ARGS,
        extra_args: Sequence[str] = (),
        webhook_secret: Optional[str] = None,
        timeout: float = 10,
        search_from: Iterable[Path] = (),
    ) -> "MockCamber":
        """Run the binary with `--port 0 --db :memory:`, `args` (fast stages and retries) and a new
        webhook secret, then `extra_args` (a flag there replaces the same one of ours), and read
        its URL from its start line."""
        binary = binary or find_binary(search_from)
        secret = webhook_secret or new_webhook_secret()
        ours = ["--port", "0", "--db", ":memory:", *args]
        # A flag in extra_args replaces ours (clap refuses most flags twice).
        given = {a.split("=", 1)[0] for a in extra_args if a.startswith("--")}
        pairs = [ours[i : i + 2] for i in range(0, len(ours), 2)]
        kept = [x for flag, value in pairs if flag not in given for x in (flag, value)]
        cmd = [binary, *kept, "--webhook-secret", secret, *extra_args]
        env = {k: v for k, v in os.environ.items() if not (k.startswith("MOCK_CAMBER_") or k in _STRIPPED_ENV)}
        env.setdefault("RUST_LOG", "warn")
        log = tempfile.TemporaryFile()
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            # The signal follows the thread that forks: only a main thread's lives long enough.
            preexec_fn=_die_with_parent
            if sys.platform == "linux" and threading.current_thread() is threading.main_thread()
            else None,
        )
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def read_stdout() -> None:  # the start line, then drain so the pipe never fills
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.put(raw.decode(errors="replace").strip())
            lines.put(None)

        threading.Thread(target=read_stdout, name="mock-camber-stdout", daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                proc.kill()
                proc.wait()
                log.seek(0)
                tail = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()][-6:]
                raise RuntimeError(
                    f"mock-camber ({binary}) printed no `listening on` line within {timeout} s "
                    f"(exit code {proc.returncode}): " + " | ".join(tail)
                )
            if line.startswith("listening on "):
                url = line[len("listening on ") :]
                return cls(
                    url, webhook_secret=secret, process=proc, log=log, startup_seconds=time.perf_counter() - started
                )

    def stderr(self) -> str:
        """What the binary logged (started here only)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        self.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "MockCamber":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MockCamber(url={self.url!r})"
