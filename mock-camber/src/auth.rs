//! Who may call what: tenants of the Camber API by their bearer API key, and
//! the admin token guarding the mock's own `/_mock/` API, as actix extractors.

use std::collections::{HashMap, HashSet};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};

use crate::error::ApiError;
use crate::state::AppState;
use crate::tenant::{tenant_id, Tenant};

/// Which bearer tokens are tenants.
pub struct Tenants {
    /// No key configured: every non-empty token is its own tenant.
    pub open: bool,
    pub ids: HashSet<String>,
}

/// An `--api-key` entry: `KEY`, or `KEY=SECRET` for a tenant whose webhooks
/// are signed with a secret of its own. A key that merely ends in `=`
/// padding (`abc==`) stays a key.
pub fn split_key(entry: &str) -> (&str, Option<&str>) {
    let entry = entry.trim();
    match entry.split_once('=') {
        Some((key, secret))
            if !key.is_empty() && !secret.is_empty() && !secret.starts_with('=') =>
        {
            (key, Some(secret))
        }
        _ => (entry, None),
    }
}

/// Tenant id → its own webhook secret, from the `--api-key` entries.
pub fn tenant_secrets(keys: &[String]) -> HashMap<String, Vec<String>> {
    (keys.iter())
        .filter_map(|k| match split_key(k) {
            (key, Some(secret)) => Some((tenant_id(key), vec![secret.to_owned()])),
            _ => None,
        })
        .collect()
}

impl Tenants {
    pub fn new(keys: &[String]) -> Self {
        let keys: Vec<&str> = (keys.iter())
            .map(|k| split_key(k).0)
            .filter(|k| !k.is_empty())
            .collect();
        Self {
            open: keys.is_empty(),
            ids: keys.iter().map(|k| tenant_id(k)).collect(),
        }
    }
}

pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().expect("state");
        std::future::ready(match bearer(req) {
            None => Err(ApiError::Unauthenticated(
                "missing API key: send Authorization: Bearer <key>",
            )),
            Some(key) => {
                let t = Tenant::from_key(key);
                if state.tenants.open || state.tenants.ids.contains(&t.id) {
                    Ok(t)
                } else {
                    Err(ApiError::Unauthenticated("unknown API key"))
                }
            }
        })
    }
}

/// Admission to `/_mock/`: the admin token when one is set.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().expect("state");
        std::future::ready(match &state.settings.admin_token {
            None => Ok(Admin),
            Some(token) => match bearer(req) {
                Some(given) if shared::signing::ct_eq(given.as_bytes(), token.as_bytes()) => {
                    Ok(Admin)
                }
                Some(_) => Err(ApiError::Unauthenticated("wrong admin token")),
                None => Err(ApiError::Unauthenticated(
                    "the admin API needs Authorization: Bearer <admin token>",
                )),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_entries_may_carry_a_secret_but_base64_padding_is_part_of_the_key() {
        assert_eq!(split_key("key"), ("key", None));
        assert_eq!(split_key(" key=secret "), ("key", Some("secret")));
        assert_eq!(split_key("key=se=cret"), ("key", Some("se=cret")));
        assert_eq!(split_key("abc=="), ("abc==", None));
        assert_eq!(split_key("abc="), ("abc=", None));
        assert_eq!(split_key("=secret"), ("=secret", None));
        let secrets = tenant_secrets(&["a=s1".into(), "b".into()]);
        assert_eq!(secrets.get(&tenant_id("a")), Some(&vec!["s1".to_owned()]));
        assert_eq!(secrets.len(), 1);
        let t = Tenants::new(&["a=s1".into(), "b".into()]);
        assert!(t.ids.contains(&tenant_id("a")) && t.ids.contains(&tenant_id("b")));
    }
}
