"""The plugin as a user meets it: inner pytest runs (pytester, in a subprocess so the
`pytest11` entry point loads it as an installed package would) against the real binary."""

import os
import re

import pytest

from mock_camber import MockCamber

RUN = ("-p", "no:cacheprovider")


def test_the_fixtures_are_there_without_any_conftest(inner: pytest.Pytester):
    inner.makepyfile(
        """
        def test_it(mock_camber, camber, webhook_receiver):
            assert mock_camber.url.startswith("http://127.0.0.1:")
            assert camber.url == mock_camber.url
            assert webhook_receiver.url.startswith("http://127.0.0.1:")
            job = camber.submit(webhook=webhook_receiver)
            assert camber.wait_for_job(job.id).status == "completed"
            assert webhook_receiver.wait_for(1)[0].verified
        """
    )
    inner.runpytest_subprocess(*RUN).assert_outcomes(passed=1)


def test_a_failing_test_reports_what_the_mock_saw_for_its_tenant(inner: pytest.Pytester):
    inner.makepyfile(
        """
        def test_fails(camber, webhook_receiver):
            webhook_receiver.respond_with(500, 200)
            job = camber.submit(webhook=webhook_receiver, metadata={"job_id": "reported-1"},
                                mock={"outcome": "failure", "error": {"code": "OCR_FAILURE"}})
            webhook_receiver.wait_for(2)
            assert camber.job(job.id).status == "completed"
        """
    )
    result = inner.runpytest_subprocess(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- what mock-camber saw -*",
            "tenant mc-test-*: 1 job(s)",
            "cmb_* app=pytest status=failed",
            "  FETCH     finished *",
            "  OCR       failed   *",
            "  error OCR_FAILURE at OCR: *No text detected*",
            "  delivery dlv_* job.failed → http://127.0.0.1:*/webhook: *, 2 attempt(s)",
            "    #1 * status 500, * ms error: receiver answered 500",
            "    #2 * status 200, * ms",
            "webhook_receiver http://127.0.0.1:*/webhook: 2 webhook(s) received",
            "  job.failed dlv_* attempt 1 for cmb_*: answered 500, verified",
            "  job.failed dlv_* attempt 2 for cmb_*: answered 200, verified",
        ]
    )


def test_a_passing_test_has_no_report_section(inner: pytest.Pytester):
    inner.makepyfile(
        """
        def test_passes(camber):
            camber.submit()
        """
    )
    result = inner.runpytest_subprocess(*RUN, "-rA")
    result.assert_outcomes(passed=1)
    assert "what mock-camber saw" not in result.stdout.str()


def test_tenants_isolate_under_xdist(inner: pytest.Pytester):
    # 40 tests on two workers (a mock each), each asserting its tenant holds only its own jobs.
    inner.makepyfile(
        """
        import os, pytest

        @pytest.mark.parametrize("i", range(40))
        def test_own_jobs(camber, webhook_receiver, i):
            jobs = [camber.submit(webhook=webhook_receiver, metadata={"job_id": f"t{i}-{n}"}) for n in range(2)]
            assert [j.id for j in camber.list_jobs()] == [jobs[1].id, jobs[0].id]
            hooks = webhook_receiver.wait_for(2)
            assert sorted(h.body["job_id"] for h in hooks) == [f"t{i}-0", f"t{i}-1"]
            assert all(h.verified for h in hooks)
            print("worker", os.environ["PYTEST_XDIST_WORKER"])
        """
    )
    result = inner.runpytest_subprocess(*RUN, "-n", "2", "-rA")
    result.assert_outcomes(passed=40)
    out = result.stdout.str()
    assert "worker gw0" in out and "worker gw1" in out


def test_a_missing_binary_is_one_line_saying_where_it_looked(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MOCK_CAMBER_BIN")
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not os.path.isfile(os.path.join(p, "mock-camber"))))
    inner.makefile(".toml", Cargo="[workspace]\n")  # a repository root without target/
    inner.makepyfile(
        """
        def test_needs_it(camber):
            pass
        """
    )
    result = inner.runpytest_subprocess(*RUN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_needs_it _*",
            "mock-camber binary not found: MOCK_CAMBER_BIN is unset, none on PATH, "
            f"none at {inner.path}/target/{{release,debug}}/mock-camber; "
            "build it with `cargo build --release -p mock-camber` (or set MOCK_CAMBER_BIN, or MOCK_CAMBER_URL for a running mock)",
            "*= short test summary info =*",
        ],
        consecutive=True,
    )
    assert "Traceback" not in result.stdout.str() and "During handling" not in result.stdout.str()


def test_a_bad_mock_camber_bin_says_so(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MOCK_CAMBER_BIN", str(inner.path / "nope"))
    inner.makepyfile("def test_needs_it(mock_camber):\n    pass\n")
    result = inner.runpytest_subprocess(*RUN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_needs_it _*",
            "MOCK_CAMBER_BIN=*/nope is not an executable file; build it with `cargo build --release -p mock-camber`",
            "*= short test summary info =*",
        ],
        consecutive=True,
    )


def test_mock_camber_url_uses_a_running_instance(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mock_binary: str):
    with MockCamber.start(mock_binary, webhook_secret="team-secret") as running:
        monkeypatch.setenv("MOCK_CAMBER_URL", running.url)
        monkeypatch.setenv("MOCK_CAMBER_WEBHOOK_SECRET", "team-secret")
        monkeypatch.setenv("MOCK_CAMBER_BIN", "/nonexistent")  # never started: the URL wins
        inner.makepyfile(
            f"""
            def test_it(mock_camber, camber, webhook_receiver):
                assert mock_camber.url == {running.url!r} and mock_camber.process is None
                job = camber.submit(webhook=webhook_receiver)
                assert webhook_receiver.wait_for(1)[0].verified
                print("JOB", job.id, camber.key)
            """
        )
        result = inner.runpytest_subprocess(*RUN, "-s")
        result.assert_outcomes(passed=1)
        [(job_id, key)] = re.findall(r"JOB (cmb_\w+) (mc-test-\w+)", result.stdout.str())
        assert [j.id for j in running.jobs(tenant=key)] == [job_id]
        assert running.process is not None and running.process.poll() is None  # still running


def test_mock_camber_api_key_shares_one_tenant_and_reports_only_the_tests_jobs(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mock_binary: str
):
    with MockCamber.start(mock_binary, extra_args=["--api-key", "team-key"]) as running:
        running.tenant("team-key").submit(metadata={"job_id": "earlier"})
        monkeypatch.setenv("MOCK_CAMBER_URL", running.url)
        monkeypatch.setenv("MOCK_CAMBER_API_KEY", "team-key")
        inner.makepyfile(
            """
            def test_fails(camber):
                assert camber.key == "team-key"
                job = camber.submit(metadata={"job_id": "this-test"})
                assert len(camber.list_jobs()) == 1  # fails: the tenant is shared
            """
        )
        result = inner.runpytest_subprocess(*RUN)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["tenant team-key: 1 job(s) submitted by this test", "cmb_* app=pytest status=*"])


def test_a_fresh_key_refused_by_a_mock_with_fixed_keys_says_what_to_set(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mock_binary: str):
    with MockCamber.start(mock_binary, extra_args=["--api-key", "team-key"]) as running:
        monkeypatch.setenv("MOCK_CAMBER_URL", running.url)
        inner.makepyfile("def test_it(camber):\n    camber.submit()\n")
        result = inner.runpytest_subprocess(*RUN)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*POST /jobs: 401 UNAUTHENTICATED*set MOCK_CAMBER_API_KEY*"])


def test_a_report_from_a_dead_mock_says_it_could_not_ask(inner: pytest.Pytester):
    inner.makepyfile(
        """
        def test_fails(mock_camber, camber):
            camber.submit()
            mock_camber.process.kill()
            mock_camber.process.wait()
            assert False, "the test's own failure"
        """
    )
    result = inner.runpytest_subprocess(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E *AssertionError: the test's own failure", "tenant mc-test-*: could not ask http://127.0.0.1:*: *"])


def test_find_binary_outside_a_repository_names_where_it_looked(tmp_path, monkeypatch: pytest.MonkeyPatch):
    from mock_camber import BinaryNotFound, find_binary

    monkeypatch.delenv("MOCK_CAMBER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BinaryNotFound) as e:
        find_binary()
    assert f"none at {tmp_path}/target/{{release,debug}}/mock-camber or above; build it with" in str(e.value)
    release = tmp_path / "target" / "release"
    release.mkdir(parents=True)
    (release / "mock-camber").write_text("#!/bin/sh\n")
    (release / "mock-camber").chmod(0o755)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert find_binary() == str(release / "mock-camber")


def test_mock_camber_args_are_passed_to_the_binary(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    # A shorter retry schedule than the plugin's: two retries, then the delivery is dead.
    monkeypatch.setenv("MOCK_CAMBER_ARGS", "--retry-schedule 10ms,10ms")
    inner.makepyfile(
        """
        def test_it(mock_camber, camber, webhook_receiver):
            webhook_receiver.respond_with(500)
            job = camber.submit(webhook=webhook_receiver)
            [d] = mock_camber.deliveries(job_id=job.id, state="dead", timeout=10)
            assert [a.status for a in d.attempts] == [500, 500, 500]
            assert len(webhook_receiver.wait_for(3)) == 3
        """
    )
    inner.runpytest_subprocess(*RUN).assert_outcomes(passed=1)
