//! The `healthcheck [--url …]` subcommand both binaries share
//! (docs/configuration.md, docs/compose-and-ci.md): a plain HTTP/1.1 GET
//! over std's TcpStream (through rustls for https), so minimal images
//! without curl can declare a container healthcheck.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

/// True when `url` (http or https) answers 200. Over https the certificate
/// chain is not checked (see `tls::probe_config`): a self-signed mock passes.
pub fn check(url: &str) -> Result<bool, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let has_port = authority
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && !authority.ends_with(']');
    let with_port = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to nothing"))?;
    let stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).ok();
    stream.set_write_timeout(Some(TIMEOUT)).ok();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: healthcheck\r\n\r\n"
    );
    if !tls {
        return status_is_200(stream, &request);
    }
    let host = authority
        .rsplit_once(':')
        .filter(|_| has_port)
        .map_or(authority, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
    let conn = rustls::ClientConnection::new(Arc::new(crate::tls::probe_config()), name)
        .map_err(|e| format!("tls: {e}"))?;
    status_is_200(rustls::StreamOwned::new(conn, stream), &request)
}

fn status_is_200(mut stream: impl Read + Write, request: &str) -> Result<bool, String> {
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match stream.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..n]);
    Ok(line.starts_with("HTTP/1.1 200") || line.starts_with("HTTP/1.0 200"))
}

/// Runs the subcommand: says what it found, returns the exit code (0 on 200).
pub fn run(url: &str) -> i32 {
    match check(url) {
        Ok(true) => {
            println!("ok: {url} answered 200");
            0
        }
        Ok(false) => {
            eprintln!("unhealthy: {url} did not answer 200");
            1
        }
        Err(e) => {
            eprintln!("unhealthy: {e}");
            1
        }
    }
}
