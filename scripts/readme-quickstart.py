#!/usr/bin/env python3
"""Runs the README's quickstart blocks, in order, so they cannot rot.

Every ```sh block preceded by a `<!-- quickstart -->` line in README.md is
extracted and run in one bash session (so variables carry over, as when
pasted into one terminal) against freshly started binaries configured as
`scripts/local-stack.sh --no-demo` starts them: the key `local-dev-key`, the
secret `local-dev-webhook-secret`, api's public URL its own address. Ports
are free ones, passed as MOCK_CAMBER_PORT and API_PORT (the blocks read
them, as the local stack does); data goes to a temporary directory.

Fails on a missing block, a non-zero exit, an API error answer
(`{"error":…}`), or output that is not what the README promises (checked
per block below).

    scripts/readme-quickstart.py [--bin-dir target/debug] [--readme README.md]
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

KEY = "local-dev-key"
SECRET = "local-dev-webhook-secret"

# One list of patterns per quickstart block, in order; every pattern must
# match that block's output (re.search, multiline).
EXPECT = [
    # through api: job id, upload 2xx, the mock's job id, delivered, completed
    [r"^[0-9a-f-]{8,}\s*$", r"^20[014]$", r"^cmb_\S+$", r"^200$", r"^completed$"],
    # forced failure: the job ends failed with the scenario's error, logs
    [r'"status":"failed"', r'"code":"OCR_FAILURE"', r"^\S+ OCR failed: OCR_FAILURE"],
    # hold, advance, complete
    [r'"status":"running"', r'"status":"completed"'],
    # redeliver: the refused attempt and its error, then the redelivery
    [r'"attempts":\[\{"n":1,', r'"status":null,[^}]*"error":"[^"]+"', r'^\{"id":"dlv_\w+","state":'],
    # audit api's webhook receiver: no case failed
    [r"^\[\]$"],
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, log, deadline=30):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"{url}: exited with {proc.returncode}; log:\n{open(log).read()}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{url}/readyz not 200 within {deadline} s; log:\n{open(log).read()}")


def blocks(readme):
    text = open(readme, encoding="utf-8").read()
    return re.findall(r"^<!-- quickstart -->\n```sh\n(.*?)^```$", text, re.M | re.S)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default="target/debug")
    ap.add_argument("--readme", default="README.md")
    args = ap.parse_args()

    found = blocks(args.readme)
    if len(found) != len(EXPECT):
        sys.exit(f"{args.readme}: {len(found)} quickstart blocks, this script checks {len(EXPECT)}")

    tmp = tempfile.mkdtemp(prefix="readme-quickstart-")
    mport, aport = free_port(), free_port()
    mock, api = f"http://127.0.0.1:{mport}", f"http://127.0.0.1:{aport}"
    env = dict(os.environ, CAMBER_API_KEYS=KEY, CAMBER_API_KEY=KEY, WEBHOOK_SECRET=SECRET)
    procs = []
    try:
        mlog, alog = f"{tmp}/mock-camber.log", f"{tmp}/api.log"
        procs.append(subprocess.Popen(
            [f"{args.bin_dir}/mock-camber", "--host", "127.0.0.1", "--port", str(mport),
             "--db", f"{tmp}/mock-camber.db"],
            env=env, stdout=open(mlog, "w"), stderr=subprocess.STDOUT))
        wait_ready(mock, procs[0], mlog)
        procs.append(subprocess.Popen(
            [f"{args.bin_dir}/api", "--host", "127.0.0.1", "--port", str(aport),
             "--camber-endpoint", mock, "--public-url", api, "--db", f"{tmp}/api.db",
             "--artifact-dir", f"{tmp}/artifacts"],
            env=env, stdout=open(alog, "w"), stderr=subprocess.STDOUT))
        wait_ready(api, procs[1], alog)

        script = "set -eo pipefail\n"
        for i, b in enumerate(found):
            script += f"echo '@@quickstart-block {i}'\n{b}\n"
        shell_env = dict(os.environ, MOCK_CAMBER_PORT=str(mport), API_PORT=str(aport))
        r = subprocess.run(["bash", "-c", script], env=shell_env, capture_output=True,
                           text=True, timeout=120)
        outs = re.split(r"^@@quickstart-block \d+\n", r.stdout, flags=re.M)[1:]
        failed = r.returncode != 0
        for i, pats in enumerate(EXPECT):
            out = outs[i] if i < len(outs) else ""
            print(f"--- quickstart block {i + 1} ---\n{out.rstrip()}")
            # Every README block shows a success: no answer is an API error.
            for line in out.splitlines():
                if line.startswith('{"error":'):
                    print(f"!!! block {i + 1}: an error answer: {line[:200]}")
                    failed = True
            for p in pats:
                if not re.search(p, out, re.M):
                    print(f"!!! block {i + 1}: output does not match {p!r}")
                    failed = True
        if r.stderr.strip():
            print(f"--- stderr ---\n{r.stderr.rstrip()}")
        if r.returncode != 0:
            print(f"!!! the blocks exited with {r.returncode}")
        if failed:
            sys.exit("README quickstart: FAILED")
        print(f"README quickstart: all {len(found)} blocks ran as documented")
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
