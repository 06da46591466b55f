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
