//! HTTPS: `--tls-cert` + `--tls-key` with a certificate made at test time
//! (a private CA and a leaf for localhost / 127.0.0.1), and the refusals of
//! bad TLS, duration and secret input: one line naming the flag, exit 2.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_mock-camber");

/// Files of a test PKI: `ca.pem`, `cert.pem` (leaf signed by the CA),
/// `key.pem` (the leaf's key) and `other-key.pem` (a key of no certificate).
pub struct TestPki {
    pub dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", ca.pem());
        write("cert.pem", leaf.pem());
        write("key.pem", leaf_key.serialize_pem());
        write(
            "other-key.pem",
            KeyPair::generate().unwrap().serialize_pem(),
        );
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[actix_web::test]
async fn https_is_served_announced_and_health_checked() {
    let pki = TestPki::new();
    let (cert, key) = (pki.path("cert.pem"), pki.path("key.pem"));
    let mock = MockProcess::start(&[
        "--port",
        "0",
        "--db",
        ":memory:",
        "--tls-cert",
        s(&cert),
        "--tls-key",
        s(&key),
    ]);
    assert!(
        mock.address.starts_with("https://127.0.0.1:"),
        "{}",
        mock.address
    );

    // A client that trusts the test CA speaks to it over TLS.
    let tls = shared::tls::client_config(Some(&pki.path("ca.pem")), "--ca").unwrap();
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(tls)))
        .finish();
    let url = mock.address.replace("127.0.0.1", "localhost");
    let res = client
        .post(format!("{url}/jobs"))
        .bearer_auth("k")
        .send_json(&serde_json::json!({"app": "a", "input": {}}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = awc::Client::default()
        .get(mock.address.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| r.status() != 200),
        "plain http must not be served"
    );

    // The healthcheck subcommand speaks https (any certificate, like curl -k).
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
}

/// Runs the binary with `args` (and `:memory:`, port 0); expects exit 2 and
/// returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["--port", "0", "--db", ":memory:"])
        .args(args)
        .env("RUST_LOG", "error")
        .env_remove("WEBHOOK_SECRET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "nothing started: {args:?}"
    );
    err
}

#[test]
fn bad_tls_duration_and_secret_input_is_one_line_naming_the_flag_and_exit_2() {
    let pki = TestPki::new();
    let (cert, key) = (pki.path("cert.pem"), pki.path("key.pem"));
    let missing = pki.path("nope.pem");

    let err = refused(&["--tls-cert", s(&missing), "--tls-key", s(&key)]);
    assert!(
        err.contains(&format!("--tls-cert {}", missing.display())),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let err = refused(&["--tls-cert", s(&cert), "--tls-key", s(&missing)]);
    assert!(
        err.contains(&format!("--tls-key {}", missing.display())),
        "{err}"
    );

    let err = refused(&["--tls-cert", s(&key), "--tls-key", s(&key)]);
    assert!(
        err.contains("--tls-cert") && err.contains("no PEM certificate"),
        "{err}"
    );

    let other = pki.path("other-key.pem");
    let err = refused(&["--tls-cert", s(&cert), "--tls-key", s(&other)]);
    assert!(
        err.contains("--tls-key") && err.contains("does not belong to the certificate"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let err = refused(&["--tls-cert", s(&cert)]);
    assert!(err.contains("--tls-key"), "{err}");

    let err = refused(&["--delivery-timeout", "soon"]);
    assert!(err.contains("--delivery-timeout"), "{err}");

    let err = refused(&["--webhook-secret", ""]);
    assert!(err.contains("--webhook-secret"), "{err}");
    let err = refused(&["--webhook-secret", "new,"]);
    assert!(err.contains("--webhook-secret"), "{err}");
}

/// Hundreds of TCP connections that never send a ClientHello neither lock
/// a real HTTPS client out (actix's default let 256 stalled handshakes per
/// worker stop all accepting for 3 s) nor stay open past the handshake
/// timeout.
#[actix_web::test]
async fn stalled_tls_handshakes_neither_lock_clients_out_nor_stay_open() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let pki = TestPki::new();
    let (cert, key) = (pki.path("cert.pem"), pki.path("key.pem"));
    let mock = MockProcess::start(&[
        "--port",
        "0",
        "--db",
        ":memory:",
        "--workers",
        "1",
        "--tls-handshake-timeout",
        "2s",
        "--tls-cert",
        s(&cert),
        "--tls-key",
        s(&key),
    ]);
    let addr = mock.address.trim_start_matches("https://").to_owned();
    let stalled: Vec<std::net::TcpStream> = (0..400)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let tls = shared::tls::client_config(Some(&pki.path("ca.pem")), "--ca").unwrap();
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(tls)))
        .timeout(Duration::from_secs(10))
        .finish();
    let url = mock.address.replace("127.0.0.1", "localhost");
    let started = Instant::now();
    let res = client.get(format!("{url}/healthz")).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), 200);
    assert!(took < Duration::from_millis(1000), "HTTPS took {took:?}");
    // Every stalled socket is closed by the server at its timeout.
    let closed = actix_web::rt::task::spawn_blocking(move || {
        stalled
            .into_iter()
            .filter(|c| {
                let mut c = c.try_clone().unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                c.read_to_end(&mut Vec::new()).is_ok()
            })
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 400, "stalled handshakes the server closed");
}

/// A start with an expired certificate serves (a test may want one) but
/// warns, naming the flag and the expiry.
#[test]
fn an_expired_certificate_is_warned_about_at_start() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let run = |cert_path: &Path, key_path: &Path| {
        let mut child = Command::new(BIN)
            .args(["--port", "0", "--db", ":memory:"])
            .args(["--tls-cert", s(cert_path), "--tls-key", s(key_path)])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(line.starts_with("listening on https://"), "{line:?}");
        let err: Vec<String> = BufReader::new(child.stderr.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("expired"))
            .collect();
        err
    };
    let warned = run(&cert_path, &key_path);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("--tls-cert"), "{warned:?}");
    assert!(warned[0].contains("2021-01-01"), "{warned:?}");
    // A valid certificate: no such warning.
    let pki = TestPki::new();
    assert!(run(&pki.path("cert.pem"), &pki.path("key.pem")).is_empty());
}
