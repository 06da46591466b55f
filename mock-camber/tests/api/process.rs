//! The binary as a process: `listening on`, `--help`, the `healthcheck`
//! subcommand, graceful shutdown on SIGTERM.

use std::process::Command;

use serde_json::json;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_mock-camber");

#[test]
fn help_explains_every_flag_of_the_spec() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--host",
        "--port",
        "--api-key",
        "--webhook-secret",
        "--webhook-url",
        "--db",
        "--stage-ms",
        "--seed",
        "--failure-rate",
        "--submit-error-rate",
        "--retry-schedule",
        "--delivery-timeout",
        "--admin-token",
        "--max-body-bytes",
        "--scenarios",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    for env in [
        "MOCK_CAMBER_PORT",
        "CAMBER_API_KEYS",
        "WEBHOOK_SECRET",
        "MOCK_CAMBER_SCENARIOS",
    ] {
        assert!(help.contains(env), "--help lacks {env}");
    }
}

#[actix_web::test]
async fn healthcheck_exits_0_on_a_ready_daemon_and_1_on_a_dead_port() {
    let mock = MockProcess::start(&["--port", "0", "--db", ":memory:"]);
    let ok = Command::new(BIN)
        .args(["healthcheck", "--url", &format!("{}/readyz", mock.address)])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = Command::new(BIN)
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{free}/readyz"),
        ])
        .output()
        .unwrap();
    assert_eq!(dead.status.code(), Some(1));
    let not_200 = Command::new(BIN)
        .args(["healthcheck", "--url", &format!("{}/nope", mock.address)])
        .output()
        .unwrap();
    assert_eq!(not_200.status.code(), Some(1));
}

#[actix_web::test]
async fn sigterm_shuts_down_cleanly_and_keeps_the_outbox_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let mut rx = Receiver::start().await;
    rx.always(503);
    let args = [
        "--port",
        "0",
        "--db",
        db,
        "--webhook-secret",
        SECRET,
        "--retry-schedule",
        "20ms,40ms,80ms,160ms,320ms,640ms,1s,2s,4s",
    ];
    let mut mock = MockProcess::start(&args);
    let c = mock.client("k");
    let id = c.create(job_to(&rx.url)).await;
    let first = rx.next().await;

    // SIGTERM: graceful, exit status 0.
    let sent = Command::new("kill")
        .args(["-TERM", &mock.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = mock.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");

    rx.always(200);
    let again = MockProcess::start(&args);
    let c = again.client("k");
    let d = c.wait_delivery(&id, "delivered").await;
    assert!(d["attempts"].as_array().unwrap().len() >= 2);
    // The event kept its delivery id across the restart.
    let last = loop {
        let hook = rx.next().await;
        if hook.header("x-camber-delivery-id") == first.header("x-camber-delivery-id")
            && c.get(&format!("/_mock/deliveries?job_id={id}")).await.body["deliveries"][0]["state"]
                == "delivered"
        {
            break hook;
        }
    };
    assert_eq!(last.body, first.body);
    assert_eq!(c.job(&id).await["status"], json!("completed"));
}

/// Where is my data? The start-up log names the database as an absolute
/// path and says when this start created it (a typo in --db otherwise gives
/// an empty store without a word).
#[test]
fn the_database_path_is_logged_absolute_and_a_new_directory_is_called_out() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["--port", "0", "--db", "typo/mock.db"])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    // The line comes before `listening on`; EOF would mean the process died.
    let line = stderr
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("database: "))
        .expect("a `database:` line on stderr");
    let _ = child.kill();
    let _ = child.wait();
    let want = dir.path().join("typo/mock.db");
    assert!(
        line.contains(&format!("database: {}", want.display())),
        "{line}"
    );
    assert!(
        line.contains("directory did not exist and was created"),
        "{line}"
    );
}

#[test]
fn open_and_bind_errors_name_the_path_and_suggest_another_port() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let db = dir.path().join("a-file/mock.db");
    let out = Command::new(BIN)
        .args(["--port", "0", "--db", db.to_str().unwrap()])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot open the database {}", db.display())),
        "{err}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args(["--port", &port, "--db", ":memory:"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Address already in use"), "{err}");
    assert!(err.contains("--port or MOCK_CAMBER_PORT"), "{err}");
    assert_eq!(err.matches("cannot bind").count(), 1, "said once: {err}");
}

/// `--db` naming a directory, or under a file: one line that says which
/// and why (not SQLite's "unable to open database file" or the OS's
/// "File exists"), exit 2, nothing created.
#[test]
fn a_directory_as_db_or_a_file_on_the_way_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let cases = [
        (
            dir.path().to_path_buf(),
            format!(
                "mock-camber: cannot open the database {d}: it is a directory, not a file \
                 (name a file in it, e.g. {d}/mock-camber.db)"
            ),
        ),
        (
            dir.path().join("a-file/sub/mock.db"),
            format!(
                "mock-camber: cannot open the database {d}/a-file/sub/mock.db: {d}/a-file is \
                 a file, not a directory, so nothing can be created under it"
            ),
        ),
    ];
    for (db, want) in cases {
        let out = Command::new(BIN)
            .args(["--port", "0", "--db", db.to_str().unwrap()])
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end(), want);
    }
    assert!(!dir.path().join("mock-camber.db").exists());
}
