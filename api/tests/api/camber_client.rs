//! The Camber client on its own: TLS for https endpoints.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use api::camber::{CamberClient, CamberConfig, CamberError};
use api::config::Secret;

#[actix_web::test]
async fn an_https_endpoint_is_spoken_to_over_tls() {
    // A plain TCP listener stands in for the server: it records the first
    // bytes the client sends, which for TLS are a handshake record (0x16).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let first_bytes = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 3];
        stream.read_exact(&mut buf).unwrap();
        buf
    });

    let client = CamberClient::new(Arc::new(CamberConfig {
        endpoint: format!("https://localhost:{port}"),
        api_key: Secret::new("k"),
        app: "app".into(),
        callback_url: "http://127.0.0.1:1/internal/webhooks/camber".into(),
        timeout: Duration::from_secs(5),
        tls: Arc::new(shared::tls::client_config(None, "--camber-ca-cert").unwrap()),
    }));
    let err = client.job_state("cmb_1").await.unwrap_err();
    assert!(matches!(err, CamberError::Unavailable { .. }), "{err}");

    let bytes = first_bytes.join().unwrap();
    assert_eq!(bytes[0], 0x16, "a TLS handshake record");
    assert_eq!(bytes[1], 0x03);
}
