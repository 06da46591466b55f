//! Whether a waiting request's client is still there: actix does not drop
//! a handler whose client disconnects (actix-web #1313, #3462), so each
//! connection keeps a duplicate of its socket ([`on_connect`]), and a
//! parked wait ends when a peek on it sees EOF ([`client_gone`]).

use std::any::Any;
use std::os::fd::{AsFd, OwnedFd};

use actix_web::dev::Extensions;
use actix_web::HttpRequest;

/// A duplicate of a connection's socket, kept in its connection data.
pub struct ConnFd(OwnedFd);

/// `HttpServer::on_connect` hook: one `dup` per connection (not per
/// request), so a wait can tell when its client has gone.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Ok(fd) = tcp.as_fd().try_clone_to_owned() {
            ext.insert(ConnFd(fd));
        }
    }
}

/// Resolves when the request's client has closed its connection (a peek
/// sees EOF or an error). Never resolves when that cannot be known: no
/// socket kept, or the client already sent more bytes (a pipelined request).
pub async fn client_gone(req: &HttpRequest) {
    let stream = req
        .conn_data::<ConnFd>()
        .and_then(|c| c.0.try_clone().ok())
        .map(std::net::TcpStream::from)
        .filter(|s| s.set_nonblocking(true).is_ok())
        .and_then(|s| tokio::net::TcpStream::from_std(s).ok());
    if let Some(stream) = stream {
        let mut byte = [0u8; 1];
        if let Ok(0) | Err(_) = stream.peek(&mut byte).await {
            return;
        }
    }
    std::future::pending::<()>().await
}
