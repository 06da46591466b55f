#!/usr/bin/env python3
"""Fault suite: api -> mock-camber under faults, each scenario ending with an audit.

Every scenario starts both real binaries on fresh file databases (fixed
loopback ports, so a restarted process is found again), creates JOBS jobs
through api from 16 threads, injects its fault in the middle of the load,
waits until every api job is terminal (or the deadline passes), then audits:

  lost        api jobs not terminal at the deadline
  failed      api jobs that ended `failed` (none of these scenarios should fail a job)
  duplicated  api jobs with more than one Camber job (the mock's admin list)
  orphaned    api jobs that reached Camber but have no Camber job recorded
  undelivered the mock's deliveries still pending or failing at the end
  artifacts   terminal jobs whose result.json / manifest.json cannot be
              downloaded whole (200, this job, its status, the manifest's
              sha256 of result.json). They are written without fsync and
              rebuilt from the committed row when a crash took them.
  max s       longest create -> terminal time (the api job's own events)
  peak RSS    the highest VmHWM of each process (restarts included)
  refused     create attempts api answered with something else than 201
              (a full or read-only disk must say 503, never 500)
  /readyz     during a disk fault: 503 throughout, or what it said
  integrity   PRAGMA integrity_check of both databases afterwards

Exit status 0 only when every scenario has 0 lost, 0 failed, 0 duplicated,
0 undelivered and 0 bad artifacts, every refusal is a 503 or 429, /readyz said 503 during a
disk fault, and both databases pass the integrity check; and the "shared
instance" row (scripts/shared_instance.py: one mock, two teams, a hung
receiver, 1,000 parked waits, a journal reader) passes its checks. Usage: scripts/fault_suite.py [--bin-dir target/debug]
[--jobs 200] [--only NAME]. stdlib only.
"""

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

KEY = "fault-key"
SECRET = "fault-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw or b"null")
        except ValueError:
            return e.code, raw.decode(errors="replace")


def vmhwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Proc:
    """A daemon on a fixed port; remembers its peak RSS across restarts."""

    def __init__(self, name, argv, port, log):
        self.name, self.argv, self.port, self.log = name, argv, port, log
        self.p = None
        self.peak = 0
        self.url = f"http://127.0.0.1:{port}"

    def start(self):
        self.p = subprocess.Popen(
            self.argv,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "a"),
            env={**os.environ, "RUST_LOG": "warn"},
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if http("GET", f"{self.url}/readyz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not become ready; see {self.log}")

    def sample(self):
        if self.p and self.p.poll() is None:
            self.peak = max(self.peak, vmhwm_kib(self.p.pid))

    def kill9(self):
        self.sample()
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()

    def stop(self):
        if self.p and self.p.poll() is None:
            self.sample()
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()


def artifacts_whole(api_url, jid, job):
    """result.json and manifest.json of a terminal job download whole."""
    try:
        code, result = http_raw(f"{api_url}/jobs/{jid}/artifacts/result.json")
        code2, manifest = http_raw(f"{api_url}/jobs/{jid}/artifacts/manifest.json")
        if (code, code2) != (200, 200):
            return False
        r, m = json.loads(result), json.loads(manifest)
        listed = {f["name"]: f for f in m.get("files", [])}
        return (r.get("job_id") == jid == m.get("job_id")
                and r.get("status") == job["status"] == m.get("status")
                and listed.get("result.json", {}).get("sha256") == hashlib.sha256(result).hexdigest())
    except (OSError, ValueError):
        return False


def http_raw(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def iso(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def run(name, fault, args, bin_dir, setup=None):
    slug = "".join(c if c.isalnum() else "-" for c in name)
    work = tempfile.mkdtemp(prefix=f"fault-{slug}-")
    mock_dir = api_dir = work
    small = None
    if setup in ("tmpfs", "api-tmpfs"):
        # One service's data on its own small tmpfs (root only), to fill it.
        small = os.path.join(work, "tmpfs")
        os.mkdir(small)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", small],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            print(f"skip {name}: cannot mount a tmpfs here ({mounted.stderr.strip()})", flush=True)
            return None, True
        if setup == "tmpfs":
            mock_dir = small
        else:
            api_dir = small
        setup = None
    mport, aport = free_port(), free_port()
    mock = Proc(
        "mock-camber",
        [f"{bin_dir}/mock-camber", "--port", str(mport), "--db", f"{mock_dir}/mock.db",
         "--stage-ms", "20", "--api-key", KEY, "--webhook-secret", SECRET,
         "--retry-schedule", "200ms,400ms,800ms,1s,2s,2s,4s,4s,8s,8s"],
        mport, f"{work}/mock.log")
    mock.db = f"{mock_dir}/mock.db"
    mock.readyz_while_full = "-"
    api = Proc(
        "api",
        [f"{bin_dir}/api", "--port", str(aport), "--db", f"{api_dir}/api.db",
         "--artifact-dir", f"{api_dir}/artifacts", "--camber-endpoint", mock.url,
         "--camber-api-key", KEY, "--webhook-secret", SECRET,
         "--submit-retry-schedule", "200ms,400ms,800ms,1s,2s,2s,4s,4s,8s,8s",
         "--reconcile-after", "3s", "--worker-interval", "50ms", "--camber-timeout", "3s"],
        aport, f"{work}/api.log")
    api.db = f"{api_dir}/api.db"
    api.readyz_while_full = "-"
    mock.start()
    api.start()
    if setup:
        setup(mock)

    created, lock = [], threading.Lock()
    refused = {}  # status -> count of create attempts answered otherwise than 201
    fault_at = args.jobs // 2
    fired = threading.Event()
    # Creates after the trigger wait until the fault is in place, so a fast
    # run cannot finish its load before, e.g., the disk is full. Faults that
    # do not say when they are in place (kill -9 …) count as in place at once.
    in_place = threading.Event()
    fault_thread, fault_error = [], []

    def fire():
        if fault not in DISK_FAULTS:
            in_place.set()
        try:
            fault(mock, api, in_place) if fault in DISK_FAULTS else fault(mock, api)
        except Exception as e:  # the scenario fails, with the reason
            print(f"fault of {name} raised: {e!r}", flush=True)
            fault_error.append(repr(e))
        finally:
            in_place.set()

    def create(i):
        body = {"portal_schema_name": "invoice", "filename": f"f{i}.pdf",
                "mime_type": "application/pdf", "file_size_bytes": 1000}
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if fired.is_set():
                    in_place.wait(15)
                status, job = http("POST", f"{api.url}/jobs", body, timeout=5)
                if status != 201:
                    with lock:
                        refused[status] = refused.get(status, 0) + 1
                if status == 201:
                    with lock:
                        created.append(job["job_id"])
                        n = len(created)
                    if n == fault_at and not fired.is_set():
                        fired.set()
                        t = threading.Thread(target=fire, daemon=True)
                        t.start()
                        fault_thread.append(t)
                    return
            except OSError:
                pass  # api being restarted: the client tries again
            time.sleep(0.1)
        raise RuntimeError("could not create a job for 60 s")

    t0 = time.time()
    with cf.ThreadPoolExecutor(16) as ex:
        list(ex.map(create, range(args.jobs)))
    fired.wait(60)
    for t in fault_thread:
        t.join(60)

    # Wait until every api job is terminal (api may be restarting).
    pending = set(created)
    final = {}
    deadline = time.time() + args.deadline
    while pending and time.time() < deadline:
        for jid in list(pending):
            try:
                status, job = http("GET", f"{api.url}/jobs/{jid}", timeout=5)
            except OSError:
                break
            if status == 200 and job["status"] in ("completed", "failed"):
                final[jid] = job
                pending.discard(jid)
        mock.sample()
        api.sample()
        if pending:
            time.sleep(0.2)

    # Audit against the mock's own lists (admin API, all tenants).
    camber_jobs, cursor = [], None
    while True:
        q = f"{mock.url}/_mock/jobs?limit=500" + (f"&cursor={cursor}" if cursor else "")
        _, page = http("GET", q)
        camber_jobs += page["jobs"]
        cursor = page.get("next")
        if not cursor:
            break
    per_job = {}
    for cj in camber_jobs:
        per_job.setdefault((cj.get("metadata") or {}).get("job_id"), []).append(cj["id"])
    undelivered = 0
    deadline = time.time() + 30
    while True:
        # `pending`: no attempt yet; `failing`: an attempt failed and a retry
        # is due. Both are undelivered.
        undelivered = 0
        for st in ("pending", "failing"):
            _, d = http("GET", f"{mock.url}/_mock/deliveries?state={st}&limit=500")
            undelivered += len(d["deliveries"])
        if undelivered == 0 or time.time() > deadline:
            break
        time.sleep(0.2)
    bad_artifacts = sum(1 for jid, job in final.items() if not artifacts_whole(api.url, jid, job))
    duplicated = sum(1 for j in created if len(per_job.get(j, [])) > 1)
    orphaned = sum(1 for j in created if j in final and final[j].get("camber_job_id")
                   and final[j]["camber_job_id"] not in per_job.get(j, []))
    failed = sum(1 for j in final.values() if j["status"] == "failed")
    longest = 0.0
    for j in final.values():
        ev = j.get("events") or []
        if ev:
            longest = max(longest, (iso(ev[-1]["at"]) - iso(ev[0]["at"])).total_seconds())
    mock.stop()
    api.stop()
    integrity = "/".join(subprocess.run(
        ["python3", "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])", db],
        capture_output=True, text=True).stdout.strip() for db in (mock.db, api.db))
    if integrity == "ok/ok":
        integrity = "ok"
    if small:
        subprocess.run(["umount", small])
    readyz = mock.readyz_while_full if mock.readyz_while_full != "-" else api.readyz_while_full
    row = {
        "scenario": name, "jobs": len(created), "lost": len(pending), "failed": failed,
        "duplicated": duplicated, "orphaned": orphaned, "undelivered": undelivered,
        "bad_artifacts": bad_artifacts,
        "max_s": round(longest, 1), "wall_s": round(time.time() - t0, 1),
        "rss_mock_mib": round(mock.peak / 1024, 1), "rss_api_mib": round(api.peak / 1024, 1),
        "readyz_while_full": readyz, "integrity": integrity,
        "refused": " ".join(f"{k}x{v}" for k, v in sorted(refused.items(), key=str)) or "-",
        "dir": work,
    }
    ok = not (row["lost"] or row["failed"] or row["duplicated"] or row["undelivered"]
              or row["bad_artifacts"]
              or row["orphaned"] or integrity != "ok" or row["readyz_while_full"] not in ("-", 503)
              # A refused create must say "try again", never 500.
              or any(k not in (503, 429) for k in refused) or fault_error)
    if ok and not args.keep:
        subprocess.run(["rm", "-rf", work])
    return row, ok


def kill_mock_and_restart(mock, api):
    mock.kill9()
    time.sleep(1)
    mock.start()


def kill_api_and_restart(mock, api):
    api.kill9()
    time.sleep(1)
    api.start()


def api_down_10s(mock, api):
    api.kill9()
    time.sleep(10)
    api.start()


def refuse_30_percent(mock):
    http("PUT", f"{mock.url}/_mock/config", {"submit_error_rate": 0.3})


def duplicate_and_delay(mock):
    rules = {"rules": [
        {"match": {"/input/filename": "/[13579][.]pdf$/"},
         "scenario": {"webhook": {"mode": "duplicate", "count": 3}}},
        {"match": {"/input/filename": "/[02468][.]pdf$/"},
         "scenario": {"webhook": {"mode": "delay", "delay_ms": 1500}}},
    ]}
    status, body = http("PUT", f"{mock.url}/_mock/config", rules)
    assert status == 200, body


def nothing(mock, api):
    pass


def readyz_for_3s(proc):
    """/readyz of `proc` sampled for 3 s: 503 if it said 503 throughout."""
    seen = set()
    for _ in range(10):
        time.sleep(0.3)
        try:
            seen.add(http("GET", f"{proc.url}/readyz", timeout=5)[0])
        except OSError:
            seen.add(None)
    proc.readyz_while_full = 503 if seen == {503} else "/".join(map(str, sorted(seen, key=str)))


def fill_disk_3s(proc, in_place):
    """Fills the tmpfs under `proc`'s database for 3 s, then frees it."""
    fill = os.path.join(os.path.dirname(proc.db), "filler")
    try:
        # Unbuffered: a buffered file would raise ENOSPC again on close.
        with open(fill, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        in_place.set()
        readyz_for_3s(proc)
    finally:
        os.remove(fill)


def disk_full_3s(mock, api, in_place):
    fill_disk_3s(mock, in_place)


def api_disk_full_3s(mock, api, in_place):
    fill_disk_3s(api, in_place)


# A read-only remount of the database's file system is refused while the
# service holds the database open for writing ("target is busy"), so a
# read-only database mid-run cannot be staged this way; disk full can.
DISK_FAULTS = (disk_full_3s, api_disk_full_3s)


SCENARIOS = [
    ("baseline", nothing, None),
    ("kill -9 mock, restart", kill_mock_and_restart, None),
    ("kill -9 api, restart", kill_api_and_restart, None),
    ("api down 10 s", api_down_10s, None),
    ("30 % of submits 503/429", nothing, refuse_30_percent),
    ("webhooks duplicated x3 / delayed 1.5 s", nothing, duplicate_and_delay),
    ("mock disk full 3 s (tmpfs)", disk_full_3s, "tmpfs"),
    ("api disk full 3 s (tmpfs)", api_disk_full_3s, "api-tmpfs"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default="target/debug")
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--deadline", type=float, default=120)
    ap.add_argument("--only")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    rows, all_ok = [], True
    for name, fault, setup in SCENARIOS:
        if args.only and args.only not in name:
            continue
        row, ok = run(name, fault, args, args.bin_dir, setup)
        all_ok &= ok
        if row is None:
            continue
        rows.append(row)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {json.dumps(row)}", flush=True)
    print()
    print("| scenario | jobs | lost | failed | duplicated | orphaned | undelivered | bad artifacts | max create->terminal | peak RSS mock / api | creates refused | /readyz during the fault | integrity_check |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['jobs']} | {r['lost']} | {r['failed']} | {r['duplicated']} | "
              f"{r['orphaned']} | {r['undelivered']} | {r['bad_artifacts']} | {r['max_s']} s | {r['rss_mock_mib']} / {r['rss_api_mib']} MiB | "
              f"{r['refused']} | {r['readyz_while_full']} | {r['integrity']} |")
    print(f"\nreproduce: scripts/fault_suite.py --bin-dir {args.bin_dir} --jobs {args.jobs}")
    if not args.only or args.only in "shared instance":
        # One mock, two teams, a hung receiver, 1,000 parked waits and a
        # journal reader at once: its own script, its own row.
        print(flush=True)
        shared = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "shared_instance.py"),
                                 "--bin-dir", args.bin_dir])
        all_ok &= shared.returncode == 0
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
