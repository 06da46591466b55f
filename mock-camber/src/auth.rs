//! Who may call what: tenants by their bearer API key (SPEC §2) and the
//! admin token guarding `/_mock/` (SPEC §5), as actix extractors.

use std::collections::HashSet;

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

impl Tenants {
    pub fn new(keys: &[String]) -> Self {
        let keys: Vec<&String> = keys.iter().filter(|k| !k.trim().is_empty()).collect();
        Self {
            open: keys.is_empty(),
            ids: keys.iter().map(|k| tenant_id(k.trim())).collect(),
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
