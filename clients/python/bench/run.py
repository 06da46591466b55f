"""Figures for BENCHMARKS.md: the plugin's session start-up, a fresh tenant, and a 200-test file.

Usage (from the repository root, with the package and pytest-xdist installed):
    MOCK_CAMBER_BIN=target/release/mock-camber python clients/python/bench/run.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

from mock_camber import MockCamber, find_binary

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def ms(xs: List[float]) -> str:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
    return f"median {statistics.median(xs) * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms (n={len(xs)})"


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="runs of the 200-test file in each mode")
    ap.add_argument("--starts", type=int, default=20)
    args = ap.parse_args()
    binary = find_binary([REPO])
    print(f"binary: {binary}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")

    # 1. Session start-up: the fixture's MockCamber.start() (spawn, read the start line),
    #    then until a first request is answered, and the stop at the session's end.
    starts, ready, stops = [], [], []
    for _ in range(args.starts):
        t = time.perf_counter()
        mock = MockCamber.start(binary)
        starts.append(mock.startup_seconds or 0.0)
        mock.config()
        ready.append(time.perf_counter() - t)
        stops.append(timed(mock.stop))
    print(f"session start-up (spawn → `listening on` line): {ms(starts)}")
    print(f"session start-up (spawn → first admin answer):  {ms(ready)}")
    print(f"session stop (SIGTERM → exit):                  {ms(stops)}")

    # 2. A fresh tenant: the `camber` fixture makes a client object (no request); the
    #    mock meets the new key at its first request. Compared with a known key's submit.
    with MockCamber.start(binary) as mock:
        warm = mock.tenant()
        warm.submit()
        for _ in range(20):  # warm the connection pool and the mock
            warm.submit()
        make, first, known = [], [], []
        for _ in range(200):
            t = time.perf_counter()
            tenant = mock.tenant()
            make.append(time.perf_counter() - t)
            first.append(timed(lambda: tenant.submit()))
            known.append(timed(lambda: warm.submit()))
        print(f"fresh tenant, client object (the fixture):      {ms(make)}")
        print(f"fresh tenant, its first submit (POST + GET):    {ms(first)}")
        print(f"known tenant, a submit (POST + GET):            {ms(known)}")

    # 3. The 200-test file: wall time of the whole pytest run (interpreter, collection,
    #    the session's mock(s), 200 × (tenant, receiver, submit, webhook)), serial and -n 2.
    #    The same file cut to its first test gives the fixed part (interpreter, plugins,
    #    workers, mocks); what is left of the 200-test time, over 199, is one test's cost.
    env = {**os.environ, "MOCK_CAMBER_BIN": binary, "PYTHONDONTWRITEBYTECODE": "1"}
    whole = str(HERE / "test_200_jobs.py")
    for mode, extra in (("serial", []), ("-n 2", ["-n", "2"])):
        walls = {}
        for label, target, passed in (("1 test", whole + "::test_a_job_and_its_webhook[0]", 1), ("200 tests", whole, 200)):
            ws = []
            for _ in range(args.runs):
                cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target, *extra]
                t = time.perf_counter()
                r = subprocess.run(cmd, env=env, capture_output=True, text=True)
                ws.append(time.perf_counter() - t)
                if r.returncode != 0 or f"{passed} passed" not in r.stdout:
                    sys.exit(f"pytest failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
            walls[label] = statistics.median(ws)
            print(f"{label:>9}, {mode:<6}: wall {walls[label]:.2f} s median of {args.runs} "
                  f"({', '.join(f'{w:.2f}' for w in ws)})")
        per_test = (walls["200 tests"] - walls["1 test"]) / 199
        print(f"   per test, {mode:<6}: {per_test * 1000:.1f} ms (wall, beyond the fixed part)")


if __name__ == "__main__":
    main()
