//! `POST /jobs`, `GET /jobs`, `GET /jobs/{id}`, `GET /jobs/{id}/artifacts/{name}`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{parse_job_id, read_body, AppState};
use crate::artifacts::{self, ArtifactStore};
use crate::camber::CamberClient;
use crate::domain::{JobId, NewJob, Status};
use crate::error::ApiError;
use crate::metrics::inc;
use crate::store::{self, Event, JobRecord, StoreError};

/// Largest `POST /jobs` body.
const MAX_CREATE_BODY: u64 = 64 * 1024;
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
const NO_SUCH_JOB: &str = "no job with this id";

/// `POST /jobs`: validate, write the pending row (durable before Camber is
/// called), submit inline. Camber down → still 201 `pending`; the background
/// submitter retries. With an `Idempotency-Key`, a retry of the same body
/// answers 200 with the job the first one created (nothing new, no second
/// Camber job); another body under the same key is 409.
///
/// Once the row is committed the answer is 201 whatever follows: a failure
/// to record the inline submit (disk full) leaves the job `pending`, and the
/// submitter submits it again under the same Camber `Idempotency-Key`.
pub async fn create_job(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    camber: web::Data<CamberClient>,
) -> Result<HttpResponse, ApiError> {
    let idem_key = req
        .headers()
        .get(shared::headers::IDEMPOTENCY_KEY)
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 255)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::InvalidRequest(
                        "Idempotency-Key must be 1 to 255 characters of text".into(),
                    )
                })
        })
        .transpose()?;
    let body = read_body(&req, payload, MAX_CREATE_BODY).await?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidJson(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::InvalidRequest(
            "the body must be a JSON object".into(),
        ));
    };
    let new_job = NewJob::parse(&map, state.max_file_bytes)?;
    let idem = idem_key.map(|key| store::IdemKey {
        key,
        body_hash: hex::encode(Sha256::digest(&body)),
    });

    let id = JobId::new();
    let lifecycle = &state.lifecycle;
    let lease = lifecycle.submit_lease.as_millis() as i64;
    let job_id = id.clone();
    let created = lifecycle
        .store
        .write(move |c| store::create_job(c, &job_id, &new_job, lease, idem.as_ref()))
        .await?;
    let job = match created {
        store::Created::New(job) => job,
        store::Created::Replayed(job) => {
            return Ok(HttpResponse::Ok()
                .insert_header((shared::headers::IDEMPOTENT_REPLAYED, "true"))
                .json(created_view(&state, &job.id, job.status)));
        }
        store::Created::KeyReused => return Err(ApiError::IdempotencyKeyReused),
    };
    inc(&lifecycle.metrics.jobs_created);

    let status = match lifecycle.submit(&camber, &job).await {
        Ok(status) => status,
        Err(e) => {
            // The job is saved: say so. The submitter takes it again once
            // its lease ends.
            log::error!("job {id}: recording the inline submit failed: {e}");
            Status::Pending
        }
    };
    Ok(HttpResponse::Created().json(created_view(&state, &id, status)))
}

/// The answer to a create: the job id, its status, where to upload.
fn created_view(state: &AppState, id: &JobId, status: Status) -> Value {
    let expires = chrono::Utc::now().timestamp() + state.upload_ttl.as_secs() as i64;
    let upload_url = state.uploads.url(&state.public_url, id, expires);
    json!({
        "job_id": id,
        "status": status.as_str(),
        "upload_url": upload_url,
    })
}

/// A job as `GET /jobs/{id}` shows it (one entry of `GET /jobs` too),
/// serialised straight from the row: no `Value` tree is built per poll.
#[derive(serde::Serialize)]
pub struct JobView<'a> {
    job_id: &'a JobId,
    status: &'static str,
    portal_schema_name: &'a str,
    filename: &'a str,
    mime_type: &'a str,
    file_size_bytes: u64,
    camber_job_id: Option<&'a str>,
    created_at: &'a str,
    updated_at: &'a str,
    result: Option<&'a Value>,
    error: Option<&'a shared::JobFailure>,
    artifacts: Vec<ArtifactEntry<'a>>,
    events: &'a [Event],
}

#[derive(serde::Serialize)]
struct ArtifactEntry<'a> {
    name: &'a str,
    size: u64,
    url: String,
}

pub fn job_view<'a>(
    job: &'a JobRecord,
    events: &'a [Event],
    input_size: Option<u64>,
    public_url: &str,
) -> JobView<'a> {
    let entry = |name: &'a str, size| ArtifactEntry {
        name,
        size,
        url: format!("{public_url}/jobs/{}/artifacts/{name}", job.id),
    };
    let mut artifacts = Vec::with_capacity(job.artifacts.len() + 1);
    if let Some(size) = input_size {
        artifacts.push(entry(artifacts::INPUT, size));
    }
    for a in &job.artifacts {
        artifacts.push(entry(&a.name, a.size));
    }
    JobView {
        job_id: &job.id,
        status: job.status.as_str(),
        portal_schema_name: &job.portal_schema_name,
        filename: &job.filename,
        mime_type: &job.mime_type,
        file_size_bytes: job.file_size_bytes,
        camber_job_id: job.camber_job_id.as_deref(),
        created_at: &job.created_at,
        updated_at: &job.updated_at,
        result: job.result.as_ref(),
        error: job.error.as_ref(),
        artifacts,
        events,
    }
}

/// Reads a job with its events and renders its view's JSON (blocking).
fn load_view(
    conn: &rusqlite::Connection,
    id: &JobId,
    artifacts: &ArtifactStore,
    public_url: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(job) = store::get_job(conn, id)? else {
        return Ok(None);
    };
    let events = store::events(conn, id)?;
    let view = job_view(&job, &events, artifacts.input_size(id), public_url);
    Ok(Some(serde_json::to_vec(&view)?))
}

/// A JSON body already rendered.
fn json_body(status: actix_web::http::StatusCode, bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(actix_web::http::header::ContentType::json())
        .body(bytes)
}

/// `GET /jobs/{id}`.
pub async fn get_job(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_job_id(&path).ok_or(ApiError::NotFound(NO_SUCH_JOB))?;
    let artifacts = state.lifecycle.artifacts.clone();
    let public_url = state.public_url.clone();
    let view = state
        .lifecycle
        .store
        .read(move |c| load_view(c, &id, &artifacts, &public_url))
        .await?
        .ok_or(ApiError::NotFound(NO_SUCH_JOB))?;
    Ok(json_body(actix_web::http::StatusCode::OK, view))
}

#[derive(serde::Deserialize)]
struct ListParams {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /jobs?status=&limit=&cursor=`: newest first; `next` is the cursor
/// of the following page, or null.
pub async fn list_jobs(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut params = web::Query::<ListParams>::from_query(req.query_string())
        .map_err(|e| ApiError::InvalidRequest(format!("bad query string: {e}")))?
        .into_inner();
    // An empty value is "not given", as on mock-camber's lists.
    for p in [&mut params.status, &mut params.limit, &mut params.cursor] {
        p.take_if(|v| v.is_empty());
    }
    let status = params
        .status
        .map(|s| {
            Status::parse(&s).ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "`status` must be one of pending, processing, completed, failed (got `{s}`)"
                ))
            })
        })
        .transpose()?;
    let limit = match params.limit {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!("`limit` must be an integer from 1 to {MAX_PAGE}"))
            })?,
    };
    let before = shared::paging::parse_cursor(params.cursor.as_deref())
        .map_err(|e| ApiError::InvalidRequest(e.into()))?;

    let artifacts = state.lifecycle.artifacts.clone();
    let public_url = state.public_url.clone();
    let page = state
        .lifecycle
        .store
        .read(move |c| {
            let (jobs, more) = store::list_jobs(c, status, before, limit)?;
            let next = if more {
                jobs.last().map(|j| j.seq.to_string())
            } else {
                None
            };
            let found = jobs
                .iter()
                .map(|j| Ok((store::events(c, &j.id)?, artifacts.input_size(&j.id))))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let views: Vec<JobView> = jobs
                .iter()
                .zip(&found)
                .map(|(j, (events, input))| job_view(j, events, *input, &public_url))
                .collect();
            let bytes = serde_json::to_vec(&json_page(&views, next))?;
            Ok(bytes)
        })
        .await?;
    Ok(json_body(actix_web::http::StatusCode::OK, page))
}

/// `GET /jobs`'s body: `{"jobs": [...], "next": ...}`.
fn json_page<'a>(jobs: &'a [JobView<'a>], next: Option<String>) -> impl serde::Serialize + 'a {
    #[derive(serde::Serialize)]
    struct Page<'a> {
        jobs: &'a [JobView<'a>],
        next: Option<String>,
    }
    Page { jobs, next }
}

/// `GET /jobs/{id}/artifacts/{name}`: `input`, `result.json`, `manifest.json`.
pub async fn download_artifact(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (raw_id, name) = path.into_inner();
    let id = parse_job_id(&raw_id).ok_or(ApiError::NotFound(NO_SUCH_JOB))?;
    let artifacts = state.lifecycle.artifacts.clone();
    let found = state
        .lifecycle
        .store
        .read(move |c| {
            let Some(job) = store::get_job(c, &id)? else {
                return Ok(None);
            };
            let failed = |e: std::io::Error| StoreError::Blocking(format!("reading artifact: {e}"));
            // The input (up to --max-file-bytes) is streamed from disk;
            // result.json / manifest.json are small, count once the
            // transition that recorded them committed (see
            // lifecycle::finish), and are checked against that row (see
            // artifacts::read_derived).
            if name == artifacts::INPUT {
                let file = artifacts.open_input(&id).map_err(failed)?;
                Ok(file.map(|(f, len)| (job.mime_type.clone(), Served::File(f, len))))
            } else {
                let bytes = artifacts.read_derived(&job, &name).map_err(failed)?;
                Ok(bytes.map(|b| ("application/json".to_owned(), Served::Bytes(b))))
            }
        })
        .await?;
    let (content_type, served) = found.ok_or(ApiError::NotFound(NO_SUCH_JOB))?;
    let mut res = HttpResponse::Ok();
    res.content_type(content_type);
    Ok(match served {
        Served::Bytes(b) => res.body(b),
        Served::File(file, len) => res.no_chunking(len).streaming(file_chunks(file)),
    })
}

/// An artifact as served: small ones read, the input as an open file.
enum Served {
    Bytes(Vec<u8>),
    File(std::fs::File, u64),
}

/// Bytes read per step of a streamed file.
const FILE_CHUNK: usize = 64 * 1024;

/// `file` as a stream of chunks, each read on the blocking pool. The server
/// polls the next chunk only once the previous one is written out, so a
/// client that does not read holds one chunk plus the socket's buffers,
/// not the file.
fn file_chunks(
    file: std::fs::File,
) -> impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>> {
    futures_util::stream::try_unfold(file, |mut file| async move {
        let (file, chunk) = web::block(move || {
            use std::io::Read;
            let mut buf = vec![0; FILE_CHUNK];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok((!chunk.is_empty()).then(|| (web::Bytes::from(chunk), file)))
    })
}
