//! What a parked wait waits for ([`Interest`]), and how that becomes the
//! keys it is indexed under and the check a change must also pass.

use std::sync::Arc;

use shared::{DeliveryState, JobStatus, WebhookEvent};

use crate::journal::filter::{Filter, PathMatch};

/// What a parked wait waits for: the changes that wake it.
#[derive(Clone)]
pub enum Interest {
    /// One job reaching one of `statuses`.
    Job {
        id: String,
        statuses: Vec<JobStatus>,
    },
    /// An admin job list: a job of one of `tenants` (`None`: any), of
    /// `app` and in `status` (each when given) created or changed.
    Jobs {
        tenants: Option<Vec<String>>,
        app: Option<String>,
        status: Option<JobStatus>,
    },
    /// An admin delivery list, by the same rule.
    Deliveries {
        job_id: Option<String>,
        state: Option<DeliveryState>,
        event: Option<WebhookEvent>,
    },
    /// One receiver audit's report being written (`done`).
    Audit { id: String },
    /// The request journal: an entry `filter` matches recorded.
    Requests(Arc<Filter>),
    /// Any change at all (a wait that cannot say).
    Anything,
}

/// Where a parked wait is indexed: the change's own fields name the few
/// keys to look up, so a change costs lookups, not a pass over the waits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Job(String),
    Jobs(Option<String>, Option<String>, Option<JobStatus>),
    Deliveries(Option<String>, Option<DeliveryState>, Option<WebhookEvent>),
    Audit(String),
    /// Method (upper case) and exact path without its query, when given;
    /// status and a regex path are checked on the entry itself.
    Requests(Option<String>, Option<String>),
    Anything,
}

/// The check a change must also pass to wake a wait of its key.
pub(super) enum Check {
    Always,
    Statuses(Vec<JobStatus>),
    Request(Arc<Filter>),
}

impl Interest {
    /// The keys a wait on this is indexed under, and the check a change
    /// of those keys must also pass.
    pub(super) fn index(&self) -> (Vec<Key>, Check) {
        match self {
            Interest::Job { id, statuses } => (
                vec![Key::Job(id.clone())],
                Check::Statuses(statuses.clone()),
            ),
            Interest::Jobs {
                tenants,
                app,
                status,
            } => {
                let keys = match tenants {
                    None => vec![Key::Jobs(None, app.clone(), *status)],
                    Some(ts) => (ts.iter())
                        .map(|t| Key::Jobs(Some(t.clone()), app.clone(), *status))
                        .collect(),
                };
                (keys, Check::Always)
            }
            Interest::Deliveries {
                job_id,
                state,
                event,
            } => (
                vec![Key::Deliveries(job_id.clone(), *state, *event)],
                Check::Always,
            ),
            Interest::Audit { id } => (vec![Key::Audit(id.clone())], Check::Always),
            Interest::Requests(f) => {
                let path = match &f.path {
                    Some(PathMatch::Exact(p)) if !p.contains('?') => Some(p.clone()),
                    _ => None,
                };
                let method = f.method.as_ref().map(|m| m.to_ascii_uppercase());
                (vec![Key::Requests(method, path)], Check::Request(f.clone()))
            }
            Interest::Anything => (vec![Key::Anything], Check::Always),
        }
    }
}
