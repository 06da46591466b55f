//! Open-file limits (issue 19 item 6): the daemon raises its soft
//! `RLIMIT_NOFILE` to the hard one at start and bounds connections per
//! worker by what fits, so a flood of idle connections meets backpressure
//! instead of "Too many open files", and health checks keep answering.
//! The daemon runs under `prlimit`, which sets the limits it starts with.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mock-camber");

/// The daemon under `prlimit --nofile=SOFT:HARD`, its stderr collected.
struct Limited {
    child: Child,
    address: String,
    stderr: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Limited {
    fn start(nofile: &str, args: &[&str]) -> Self {
        let mut child = Command::new("prlimit")
            .arg(format!("--nofile={nofile}"))
            .arg("--")
            .arg(BIN)
            .args(["--port", "0", "--db", ":memory:", "--workers", "2"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prlimit (util-linux) runs mock-camber");
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self {
            child,
            address,
            stderr,
            lines: Vec::new(),
        }
    }

    /// Every stderr line so far.
    fn log(&mut self) -> String {
        self.lines.extend(self.stderr.try_iter());
        self.lines.join("\n")
    }

    /// A fresh connection's `GET /healthz` status line, or the reason there
    /// was none within `within`.
    fn healthz(&self, within: Duration) -> Result<String, String> {
        let mut s = TcpStream::connect(&self.address).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(within)).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) if got.is_empty() => return Err(format!("no answer within {within:?}: {e}")),
            Err(_) => {}
        }
        let text = String::from_utf8_lossy(&got);
        Ok(text.lines().next().unwrap_or_default().to_owned())
    }

    /// Polls until `/healthz` answers 200, or panics at the deadline.
    fn healthy_within(&mut self, deadline: Duration) {
        let start = Instant::now();
        loop {
            match self.healthz(Duration::from_secs(1)) {
                Ok(status) if status.contains(" 200 ") => return,
                other if start.elapsed() > deadline => {
                    panic!(
                        "/healthz: {other:?} after {:?}\n{}",
                        start.elapsed(),
                        self.log()
                    )
                }
                _ => {}
            }
        }
    }

    /// A job submitted and read back over HTTP: the store still opens files.
    fn submit_and_read(&self) {
        let body = br#"{"app":"rythmiq-worker","input":{"filename":"a.pdf"}}"#;
        let mut s = TcpStream::connect(&self.address).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /jobs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer k\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert!(got.starts_with("HTTP/1.1 201"), "{got}");
        assert!(got.contains("\"id\""), "{got}");
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Up to `n` idle connections, opened at once: those the kernel does not
/// complete within a second (a full listen backlog drops the handshake)
/// are given up, as a flood's client would.
/// Idle connections against a 300-descriptor limit: two descriptors each
/// (the socket and the copy kept to notice a client leaving) is more than
/// the limit holds.
const FLOOD: usize = 300;

fn idle_connections(address: &str, n: usize) -> Vec<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let address = address.to_owned();
            set.spawn(async move {
                let conn = tokio::net::TcpStream::connect(address);
                tokio::time::timeout(Duration::from_secs(1), conn).await
            });
        }
        // As std sockets, so they outlive this runtime.
        set.join_all()
            .await
            .into_iter()
            .filter_map(|r| r.ok()?.ok()?.into_std().ok())
            .collect()
    })
}

/// The probe's case: a 1,024 soft limit under a higher hard one, 600 idle
/// connections. Before the fix each connection took two descriptors and
/// the daemon ran out; now the soft limit is raised to the hard one at
/// start, the log says so, and `/healthz` answers at once.
#[test]
fn the_soft_limit_is_raised_to_the_hard_one_and_idle_connections_do_not_starve_it() {
    let mut mock = Limited::start("1024:4096", &[]);
    let wait_for = Instant::now() + Duration::from_secs(10);
    let mut log = mock.log();
    while !log.contains("open-file limit raised from 1024 to 4096") {
        assert!(Instant::now() < wait_for, "no limit line in:\n{log}");
        if let Ok(line) = mock.stderr.recv_timeout(Duration::from_secs(1)) {
            mock.lines.push(line);
        }
        log = mock.log();
    }
    let idle = idle_connections(&mock.address.clone(), 600);
    assert_eq!(idle.len(), 600, "every connection is accepted");
    let start = Instant::now();
    let status = mock
        .healthz(Duration::from_secs(2))
        .expect("/healthz answers");
    assert!(status.contains(" 200 "), "{status}");
    assert!(start.elapsed() < Duration::from_secs(2));
    mock.submit_and_read();
    drop(idle);
    let log = mock.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(
        mock.child.try_wait().unwrap().is_none(),
        "the daemon is running"
    );
}

/// A hard limit that cannot be raised: connections per worker are bounded
/// by what fits (the log says how many), so 300 idle connections wait in
/// the listen backlog instead of exhausting descriptors; the daemon stays
/// up and, once they go, answers and takes jobs. With the bound lifted
/// (`--max-connections 25000`) the same flood runs the daemon out of
/// descriptors, which `without_the_bound_the_flood_exhausts_descriptors`
/// shows, so this test can tell the two apart.
#[test]
fn under_a_hard_limit_connections_are_bounded_and_the_daemon_keeps_its_descriptors() {
    let mut mock = Limited::start("300:300", &["--webhook-max-in-flight", "16"]);
    mock.healthy_within(Duration::from_secs(10));
    let log = mock.log();
    assert!(
        log.contains("open-file limit 300 (hard limit 300)"),
        "{log}"
    );
    assert!(
        log.contains("connection(s) per worker (2 worker(s))"),
        "{log}"
    );
    // 300 descriptors, 163 kept in reserve, 3 per connection, 2 workers.
    assert!(log.contains("at most 22 connection(s) per worker"), "{log}");
    let idle = idle_connections(&mock.address.clone(), FLOOD);
    assert_eq!(idle.len(), FLOOD, "the backlog holds what is not accepted");
    // While the flood holds every slot, a health check waits in the
    // backlog until actix's first-request timeout (5 s) closes idle
    // connections, a batch at a time, then answers.
    let start = Instant::now();
    mock.healthy_within(Duration::from_secs(60));
    let waited = start.elapsed();
    assert!(mock.child.try_wait().unwrap().is_none(), "the daemon died");
    drop(idle);
    mock.healthy_within(Duration::from_secs(30));
    mock.submit_and_read();
    let log = mock.log();
    assert!(!log.contains("Too many open files"), "{log}");
    eprintln!("/healthz answered {waited:?} into a flood of {FLOOD} idle connections");
}

/// The counterpart: the same flood with the bound lifted hits the limit
/// (actix logs the failed accept). It guards the test above against
/// passing for a reason other than the bound.
#[test]
fn without_the_bound_the_flood_exhausts_descriptors() {
    let mut mock = Limited::start(
        "300:300",
        &[
            "--webhook-max-in-flight",
            "16",
            "--max-connections",
            "25000",
        ],
    );
    mock.healthy_within(Duration::from_secs(10));
    let idle = idle_connections(&mock.address.clone(), FLOOD);
    let until = Instant::now() + Duration::from_secs(20);
    while !mock.log().contains("Too many open files") {
        assert!(Instant::now() < until, "no EMFILE in:\n{}", mock.log());
        if let Ok(line) = mock.stderr.recv_timeout(Duration::from_millis(200)) {
            mock.lines.push(line);
        }
    }
    drop(idle);
}
