//! The real `api` binary started as a user would: what it says at start and
//! when it cannot start.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// No secret reaches a log line, even at `RUST_LOG=trace`: both real
/// binaries run a job end to end (submit, webhook, admin and tenant reads)
/// with distinctive secrets, and their whole stderr is searched for them.
#[actix_web::test]
async fn no_secret_is_logged_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let mock_err = dir.path().join("mock.err");
    let api_err = dir.path().join("api.err");
    let spawn = |cmd: &mut Command, err: &std::path::Path| {
        cmd.env("RUST_LOG", "trace")
            .env_remove("WEBHOOK_SECRET")
            .env_remove("CAMBER_API_KEYS")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(err).unwrap())
            .spawn()
            .unwrap()
    };
    let first_line = |child: &mut std::process::Child| {
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line.trim().trim_start_matches("listening on ").to_owned()
    };
    let mut mock = spawn(
        Command::new(crate::helpers::mock_binary())
            .args(["--port", "0", "--db", ":memory:", "--stage-ms", "0"])
            .args([
                "--api-key",
                KEY,
                "--webhook-secret",
                SECRET,
                "--admin-token",
                ADMIN,
            ])
            .env("TMPDIR", dir.path()),
        &mock_err,
    );
    let mock_url = first_line(&mut mock);
    let mut api = spawn(
        Command::new(BIN)
            .args(["--port", "0", "--camber-endpoint", &mock_url])
            .args(["--camber-api-key", KEY, "--webhook-secret", SECRET])
            .args(["--db", dir.path().join("api.db").to_str().unwrap()])
            .args(["--artifact-dir", dir.path().join("arts").to_str().unwrap()])
            .args(["--worker-interval", "10ms"]),
        &api_err,
    );
    let api_url = first_line(&mut api);

    drive_a_job_and_read_as_admin_and_tenant(&mock_url, &api_url).await;
    for child in [&mut mock, &mut api] {
        let _ = child.kill();
        let _ = child.wait();
    }

    for (name, path) in [("mock-camber", &mock_err), ("api", &api_err)] {
        assert_no_secret_logged(name, path);
    }
}

// The secrets of `no_secret_is_logged_even_at_trace_level`.
const KEY: &str = "sk_live_tenantkey_5551234";
// Base64 after the prefix, as a `whsec_` secret must be.
const SECRET: &str = "whsec_dG9wc2VjcmV0dmFsdWU3Nzc";
const ADMIN: &str = "admintok_9876543";

/// A job end to end, then admin and tenant reads (and one with a wrong key).
async fn drive_a_job_and_read_as_admin_and_tenant(mock_url: &str, api_url: &str) {
    let http = crate::helpers::client();
    let mut res = http
        .post(format!("{api_url}/jobs"))
        .send_json(&crate::helpers::job_body("secret-check.pdf"))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let job: serde_json::Value = res.json().await.unwrap();
    let id = job["job_id"].as_str().unwrap().to_owned();
    crate::helpers::wait_until(Duration::from_secs(10), "the job to complete", || async {
        let mut r = http.get(format!("{api_url}/jobs/{id}")).send().await.ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        (v["status"] == "completed").then_some(())
    })
    .await;
    for (url, token) in [
        (format!("{mock_url}/_mock/jobs"), ADMIN),
        (format!("{mock_url}/jobs"), KEY),
        (format!("{mock_url}/_mock/requests"), ADMIN),
    ] {
        let r = http.get(url).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let _ = http
        .get(format!("{mock_url}/jobs"))
        .bearer_auth("wrong-key")
        .send()
        .await;
}

/// `name`'s whole log (at `path`) holds none of the secrets.
fn assert_no_secret_logged(name: &str, path: &std::path::Path) {
    let log = std::fs::read_to_string(path).unwrap();
    assert!(log.lines().count() > 20, "{name} logged at trace level");
    for secret in [
        KEY,
        SECRET,
        ADMIN,
        "dG9wc2VjcmV0dmFsdWU3Nzc",
        "tenantkey_5551234",
    ] {
        assert!(
            !log.contains(secret),
            "{name} logged a secret ({secret}): {}",
            log.lines().find(|l| l.contains(secret)).unwrap_or_default()
        );
    }
    assert!(
        !log.contains("signature="),
        "{name} logged an upload URL's signature"
    );
}

/// `--db` naming a directory, or under a file, and `--artifact-dir` naming
/// a file: one line that says which and why (not SQLite's "unable to open
/// database file" or the OS's "File exists"), exit 2, nothing created.
#[test]
fn a_directory_as_db_or_a_file_where_a_directory_is_meant_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let arts = dir.path().join("arts");
    let cases = [
        (
            dir.path().to_path_buf(),
            arts.clone(),
            format!(
                "api: cannot open the database {d}: it is a directory, not a file \
                 (name a file in it, e.g. {d}/api.db)"
            ),
        ),
        (
            dir.path().join("a-file/sub/api.db"),
            arts.clone(),
            format!(
                "api: cannot open the database {d}/a-file/sub/api.db: {d}/a-file is a file, \
                 not a directory, so nothing can be created under it"
            ),
        ),
        (
            dir.path().join("ok.db"),
            dir.path().join("a-file"),
            format!("api: cannot prepare the artifact directory {d}/a-file: it is a file, not a directory"),
        ),
    ];
    for (db, arts, want) in cases {
        let out = Command::new(BIN)
            .args(["--port", "0", "--db", db.to_str().unwrap()])
            .args(["--artifact-dir", arts.to_str().unwrap()])
            .args(["--camber-endpoint", "http://127.0.0.1:9"])
            .env("RUST_LOG", "error")
            .env_remove("DATABASE_PATH")
            .env_remove("ARTIFACT_DIR")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end(), want);
    }
    assert!(!dir.path().join("ok.db").exists() && !arts.exists());
}

/// A new artifact directory is called out as created, as a new database
/// directory is.
#[test]
fn a_new_artifact_directory_is_called_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["--port", "0", "--db", "api.db", "--artifact-dir", "arts"])
        .args(["--camber-endpoint", "http://127.0.0.1:9"])
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_PATH")
        .env_remove("ARTIFACT_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let line = stderr
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("artifacts: "))
        .expect("an `artifacts:` line on stderr");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.ends_with(&format!(
            "artifacts: {} (new: the directory did not exist and was created)",
            dir.path().join("arts").display()
        )),
        "{line}"
    );
}
