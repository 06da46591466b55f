//! Who may call what, as actix extractors: a `Tenant` of the Camber API by
//! its bearer API key (checked against `tenant::Tenants`), and `Admin`, the
//! admin token guarding the mock's own `/_mock/` API.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};

use crate::error::ApiError;
use crate::state::AppState;
use crate::tenant::Tenant;

/// The token of an `Authorization: Bearer <token>` header, if any.
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
