//! How the service holds up against hostile or broken clients and
//! configurations (issue 19): bad secrets at start, slow bodies, broken
//! chunked bodies, file-descriptor pressure.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_api");

/// A `whsec_` secret that is not base64 as Standard Webhooks libraries
/// read it is refused at start in one line naming the flag (without
/// repeating the secret); unpadded base64 is accepted.
#[test]
fn a_whsec_secret_that_is_not_base64_is_refused_at_start_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "whsec_C2FVsBQIhrscChlQIMV-b5sSYspob7oD",
        "old,whsec_not*base64",
    ] {
        let out = Command::new(BIN)
            .args(["--port", "0"])
            .args(["--db", dir.path().join("api.db").to_str().unwrap()])
            .args(["--artifact-dir", dir.path().join("arts").to_str().unwrap()])
            .args(["--webhook-secret", bad])
            .env("RUST_LOG", "error")
            .env_remove("WEBHOOK_SECRET")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{bad}: one line: {err}");
        assert!(err.contains("--webhook-secret"), "{bad}: {err}");
        assert!(
            !err.contains("not*base64") && !err.contains("b5sSYspob7oD"),
            "{err}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
    }
    // Unpadded standard base64 is what the libraries accept: it starts.
    let mut child = Command::new(BIN)
        .args(["--port", "0"])
        .args(["--db", dir.path().join("api.db").to_str().unwrap()])
        .args(["--artifact-dir", dir.path().join("arts").to_str().unwrap()])
        .args(["--webhook-secret", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7o"])
        .env("RUST_LOG", "error")
        .env_remove("WEBHOOK_SECRET")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("listening on "), "{line:?}");
}
