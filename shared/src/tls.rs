//! TLS for both binaries (rustls with the ring provider): the mock's server
//! certificate, the api's trust in Camber's (webpki roots plus an optional
//! CA file), and the `healthcheck` probe of an https URL.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process-wide provider (awc's client needs one); an
/// `Err` only means one is already installed.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{flag} {}: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a readable PEM file ({other:?})"),
    }
}

/// The server side: a PEM certificate chain and its PEM private key
/// (PKCS#8, PKCS#1 or SEC1). Every error names the flag and the file; a key
/// that does not belong to the certificate is refused here, not at the
/// first handshake.
pub fn server_config(
    cert: &Path,
    cert_flag: &str,
    key: &Path,
    key_flag: &str,
) -> Result<ServerConfig, String> {
    let certs = read_certs(cert, cert_flag)?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{key_flag} {}: {}", key.display(), pem_error(&e)))?;
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key_der.clone_key())
        .map_err(|e| format!("{key_flag} {}: {e}", key.display()))?;
    let certified = rustls::sign::CertifiedKey::new(certs.clone(), signing_key);
    certified.keys_match().map_err(|_| {
        format!(
            "{key_flag} {}: this key does not belong to the certificate in {cert_flag} {}",
            key.display(),
            cert.display()
        )
    })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("{cert_flag} {}: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// When the first (leaf) certificate of the PEM file `cert` stops being
/// valid, as Unix seconds: `None` when the file or its DER cannot be read
/// that far (then `server_config` has the say). Read with a small DER walk
/// (Certificate → TBSCertificate → Validity → notAfter), so that a start
/// can warn about an expired certificate before every client refuses it.
pub fn leaf_not_after(cert: &Path) -> Option<i64> {
    let certs = CertificateDer::pem_file_iter(cert)
        .ok()?
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    not_after(certs.first()?.as_ref())
}

fn not_after(der: &[u8]) -> Option<i64> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let (tag, _, after) = tlv(tbs)?;
    // The explicit [0] version is optional; serial, signature, issuer follow.
    let mut rest = if tag == 0xa0 { after } else { tbs };
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (0x30, validity, _) = tlv(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        // UTCTime: YYMMDDHHMMSSZ, years 50..99 are 19xx (RFC 5280).
        0x17 if text.len() == 13 => {
            let yy: u32 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 if text.len() == 15 => text.to_owned(),
        _ => return None,
    };
    chrono::NaiveDateTime::parse_from_str(full.trim_end_matches('Z'), "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// One DER element: (tag, content, what follows it).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The client side: the public webpki roots, plus the certificates of
/// `extra_ca` (a PEM file) when given — how api trusts a mock-camber (or
/// a staging Camber) whose certificate a private CA signed.
pub fn client_config(extra_ca: Option<&Path>, flag: &str) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        for cert in read_certs(path, flag)? {
            roots
                .add(cert)
                .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// For `healthcheck --url https://…` only: the probe asks whether this
/// process answers, not who it is, so the certificate chain is not checked
/// (a self-signed certificate passes, as with `curl -k`); the handshake
/// signatures still are.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The healthcheck's client configuration (see [`AnyCertificate`]).
pub(crate) fn probe_config() -> ClientConfig {
    let provider = provider();
    ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth()
}
