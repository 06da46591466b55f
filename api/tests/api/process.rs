//! The real `api` binary started as a user would: what it says at start and
//! when it cannot start.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_api");

/// Where is my data? Database and artifact directory are logged as absolute
/// paths, and a directory this start had to create is called out.
#[test]
fn data_paths_are_logged_absolute_and_new_directories_are_called_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["--port", "0", "--db", "typo/api.db"])
        .args(["--artifact-dir", "arts"])
        .args(["--camber-endpoint", "http://127.0.0.1:9"])
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_PATH")
        .env_remove("ARTIFACT_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    // Both lines come before the server runs; EOF would mean it died.
    let lines: Vec<String> = stderr
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains("database: ") || l.contains("artifacts: "))
        .take(2)
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let db = dir.path().join("typo/api.db");
    let arts = dir.path().join("arts");
    assert!(
        lines[0].contains(&format!("database: {}", db.display()))
            && lines[0].contains("directory did not exist and was created"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains(&format!("artifacts: {}", arts.display())),
        "{lines:?}"
    );
}

#[test]
fn open_and_bind_errors_name_the_path_and_suggest_another_port_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let db = dir.path().join("a-file/api.db");
    let out = Command::new(BIN)
        .args(["--port", "0", "--db", db.to_str().unwrap()])
        .args(["--artifact-dir", dir.path().join("arts").to_str().unwrap()])
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
        .args(["--port", &port])
        .args(["--db", dir.path().join("ok.db").to_str().unwrap()])
        .args(["--artifact-dir", dir.path().join("arts").to_str().unwrap()])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Address already in use"), "{err}");
    assert!(err.contains("--port or API_PORT"), "{err}");
    assert_eq!(err.matches("cannot bind").count(), 1, "said once: {err}");
}

#[test]
fn an_unreadable_ca_file_or_empty_secret_is_one_line_naming_the_flag_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    for (args, flag) in [
        (
            vec!["--camber-ca-cert", missing.to_str().unwrap()],
            "--camber-ca-cert",
        ),
        (vec!["--webhook-secret", "new,"], "WEBHOOK_SECRET"),
        (vec!["--camber-timeout", "soon"], "--camber-timeout"),
    ] {
        let out = Command::new(BIN)
            .args(["--port", "0"])
            .args(["--db", dir.path().join("api.db").to_str().unwrap()])
            .args(["--artifact-dir", dir.path().join("arts").to_str().unwrap()])
            .args(&args)
            .env("RUST_LOG", "error")
            .env_remove("WEBHOOK_SECRET")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening on"),
            "{args:?}: nothing started"
        );
    }
}
