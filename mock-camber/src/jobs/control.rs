//! Cancel, hold-and-advance, complete and fail: one path for the tenant
//! API (`POST /jobs/{id}/cancel`), the admin API and the console. The job
//! is read (unknown, or another tenant's, is 404), the engine applies the
//! action to the running job and answers once it is committed, and the
//! job is read again: what the caller gets is what a poll will then see.

use shared::JobStatus;

use super::job::{Action, Caller};
use crate::engine::Control;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{self, JobRow};

/// The job `id` as `caller` may see it, or 404 exactly as if it did not
/// exist.
pub async fn find(state: &AppState, caller: &Caller, id: String) -> Result<JobRow, ApiError> {
    let not_found = ApiError::NotFound(format!("no job `{id}`"));
    match state.store.read(move |c| store::get_job(c, &id)).await? {
        Some(row) if caller.may_touch(&row.tenant) => Ok(row),
        _ => Err(not_found),
    }
}

/// Applies `action` to the running job `id`; the job as committed after
/// it, or 409 when it has already ended.
pub async fn control(
    state: &AppState,
    caller: Caller,
    id: String,
    action: Action,
) -> Result<JobRow, ApiError> {
    let row = find(state, &caller, id.clone()).await?;
    let cancel = matches!(action, Action::Cancel);
    let outcome = (state.engine)
        .control(id.clone(), caller.clone(), action)
        .await;
    if outcome == Control::NotActive {
        return Err(ended(&id, row.status, cancel && caller != Caller::Admin));
    }
    find(state, &caller, id).await
}

fn ended(id: &str, status: JobStatus, tenant_cancel: bool) -> ApiError {
    let tail = if tenant_cancel {
        " and cannot be cancelled"
    } else {
        ""
    };
    ApiError::Conflict(format!("job `{id}` is already {status}{tail}"))
}
