//! Signed, expiring upload URLs: `PUBLIC_URL/jobs/{id}/upload?expires=…&signature=…`
//! where the signature is HMAC-SHA256 over the job id and expiry with a key
//! derived from the webhook secret (so the secret itself never signs two
//! kinds of message).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct UploadSigner {
    key: Vec<u8>,
}

impl UploadSigner {
    pub fn new(webhook_secret: &str) -> Self {
        let mut m = HmacSha256::new_from_slice(webhook_secret.as_bytes())
            .expect("HMAC accepts keys of any length");
        m.update(b"api upload url key v1");
        Self {
            key: m.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, job_id: &str, expires: i64) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        m.update(format!("PUT /jobs/{job_id}/upload {expires}").as_bytes());
        m
    }

    pub fn sign(&self, job_id: &str, expires: i64) -> String {
        hex::encode(self.mac(job_id, expires).finalize().into_bytes())
    }

    /// The absolute upload URL for `job_id`, valid until `expires` (unix s).
    pub fn url(&self, public_url: &str, job_id: &str, expires: i64) -> String {
        format!(
            "{public_url}/jobs/{job_id}/upload?expires={expires}&signature={}",
            self.sign(job_id, expires)
        )
    }

    /// Constant-time check of the signature; expiry is checked separately.
    pub fn verify(&self, job_id: &str, expires: i64, signature: &str) -> bool {
        let Ok(given) = hex::decode(signature) else {
            return false;
        };
        self.mac(job_id, expires).verify_slice(&given).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_the_job_and_the_expiry() {
        let s = UploadSigner::new("secret");
        let sig = s.sign("j1", 100);
        assert!(s.verify("j1", 100, &sig));
        assert!(!s.verify("j1", 101, &sig));
        assert!(!s.verify("j2", 100, &sig));
        assert!(!UploadSigner::new("other").verify("j1", 100, &sig));
        assert!(!s.verify("j1", 100, "zz"));
    }
}
