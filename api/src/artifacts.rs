//! The artifact store on disk: `$ARTIFACT_DIR/<job_id>/{input,result.json,manifest.json}`.
//! Every file is written to a temporary name and renamed into place, so a
//! reader never sees half a file. All calls are blocking: run them off the
//! async executor.
//!
//! Durability differs by file:
//! - `input` is the caller's bytes and exists nowhere else: it is synced
//!   before the rename and before the upload is answered.
//! - `result.json` and `manifest.json` are derived from what the job's row
//!   holds once its transition commits (status, Camber id, result or error,
//!   the input's bytes). They are renamed into place but not synced: the
//!   SQLite commit that follows them is the durable record. A process crash
//!   loses nothing (the page cache survives it). A power loss can leave
//!   them missing, empty or short next to a committed job; every read goes
//!   through [`ArtifactStore::read_derived`], which checks the file against
//!   the row and writes it again from the row when it does not match. This
//!   saves two fsyncs and two journal commits per finished job, the most
//!   expensive part of a webhook (see BENCHMARKS.md, issue 11).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::JobFailure;

use crate::domain::{JobId, Outcome, Status};
use crate::store::{ArtifactMeta, JobRecord};

pub const INPUT: &str = "input";
pub const RESULT: &str = "result.json";
pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
}

impl ArtifactStore {
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// Writes and syncs a small file in the root: readiness means the
    /// artifact store takes files (a full disk or a lost mount does not).
    pub fn probe(&self) -> std::io::Result<()> {
        write_atomically(&self.root, ".ready-probe", b"ok")
    }

    /// A `JobId` is a canonical UUID by construction, so it can never
    /// climb out of the root.
    fn job_dir(&self, job_id: &JobId) -> PathBuf {
        self.root.join(job_id.as_str())
    }

    pub fn path(&self, job_id: &JobId, name: &str) -> PathBuf {
        self.job_dir(job_id).join(name)
    }

    /// Stores the uploaded bytes as `<job_id>/input`.
    pub fn write_input(&self, job_id: &JobId, bytes: &[u8]) -> std::io::Result<u64> {
        write_atomically(&self.job_dir(job_id), INPUT, bytes)?;
        Ok(bytes.len() as u64)
    }

    /// Size of the uploaded input, if any.
    pub fn input_size(&self, job_id: &JobId) -> Option<u64> {
        std::fs::metadata(self.path(job_id, INPUT))
            .ok()
            .map(|m| m.len())
    }

    /// Opens the uploaded input for streaming, with its length; `None`
    /// when there is none. Blocking: call off the executor.
    pub fn open_input(&self, job_id: &JobId) -> std::io::Result<Option<(std::fs::File, u64)>> {
        match std::fs::File::open(self.path(job_id, INPUT)) {
            Ok(file) => {
                let len = file.metadata()?.len();
                Ok(Some((file, len)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads one named artifact; only the three known names are served.
    pub fn read(&self, job_id: &JobId, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        if ![INPUT, RESULT, MANIFEST].contains(&name) {
            return Ok(None);
        }
        match std::fs::read(self.path(job_id, name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Packages Camber's outcome as `result.json` (the outcome as Camber
    /// reported it) and `manifest.json` (what the directory holds, with
    /// sizes and SHA-256 digests). Returns what to record on the job. The
    /// files are not synced: the job's commit is what makes them count (see
    /// the module comment).
    pub fn package(
        &self,
        job_id: &JobId,
        camber_job_id: &str,
        outcome: &Outcome,
    ) -> std::io::Result<Vec<ArtifactMeta>> {
        let dir = self.job_dir(job_id);
        let (result, manifest) = self.render(job_id, camber_job_id, outcome)?;
        std::fs::create_dir_all(&dir)?;
        write_renamed(&dir, RESULT, &result, false)?;
        write_renamed(&dir, MANIFEST, &manifest, false)?;
        Ok(vec![
            ArtifactMeta {
                name: RESULT.into(),
                size: result.len() as u64,
            },
            ArtifactMeta {
                name: MANIFEST.into(),
                size: manifest.len() as u64,
            },
        ])
    }

    /// The bytes of `result.json` and `manifest.json` for this outcome.
    fn render(
        &self,
        job_id: &JobId,
        camber_job_id: &str,
        outcome: &Outcome,
    ) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
        let result = match outcome {
            Outcome::Completed(r) => {
                json!({"job_id": job_id, "camber_job_id": camber_job_id, "status": "completed", "result": r})
            }
            Outcome::Failed(e) => {
                json!({"job_id": job_id, "camber_job_id": camber_job_id, "status": "failed", "error": e})
            }
        };
        let result_bytes = serde_json::to_vec_pretty(&result)?;
        let mut files = vec![file_entry(RESULT, &result_bytes)];
        match std::fs::read(self.path(job_id, INPUT)) {
            Ok(input) => files.push(file_entry(INPUT, &input)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let manifest = json!({
            "job_id": job_id,
            "camber_job_id": camber_job_id,
            "status": outcome.status().as_str(),
            "files": files,
        });
        Ok((result_bytes, serde_json::to_vec_pretty(&manifest)?))
    }

    /// Reads `result.json` or `manifest.json` of a job whose transition
    /// recorded them. A file that does not match the row (missing, or not
    /// the JSON of this job and size the row recorded: what a power loss can
    /// leave of an unsynced file) is written again from the row, and the
    /// bytes from the row are served. `None`: not a derived artifact of
    /// this job.
    pub fn read_derived(&self, job: &JobRecord, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        let Some(meta) = job.artifacts.iter().find(|a| a.name == name) else {
            return Ok(None);
        };
        if name != RESULT && name != MANIFEST {
            return Ok(None);
        }
        match std::fs::read(self.path(&job.id, name)) {
            Ok(bytes) if self.looks_whole(job, meta, &bytes) => return Ok(Some(bytes)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let outcome = match job.status {
            Status::Completed => Outcome::Completed(job.result.clone().unwrap_or_default()),
            // A failed row always holds its error; without one it reads
            // as a failure Camber gave no error for.
            Status::Failed => Outcome::Failed(
                job.error
                    .clone()
                    .unwrap_or_else(|| JobFailure::new("UNKNOWN", None, json!({}))),
            ),
            // Artifacts are recorded only by the terminal transition.
            Status::Pending | Status::Processing => return Ok(None),
        };
        let camber_job_id = job.camber_job_id.as_deref().unwrap_or_default();
        let (result, manifest) = self.render(&job.id, camber_job_id, &outcome)?;
        let bytes = if name == RESULT { result } else { manifest };
        log::warn!(
            "job {}: {name} did not match the committed job (lost in a crash?); written again from the database",
            job.id
        );
        let dir = self.job_dir(&job.id);
        std::fs::create_dir_all(&dir)?;
        write_renamed(&dir, name, &bytes, false)?;
        Ok(Some(bytes))
    }

    /// Whether a derived file is what the commit recorded: the size the row
    /// holds, and JSON naming this job (a power loss leaves nothing, an
    /// empty file, or zeros, none of which pass).
    fn looks_whole(&self, job: &JobRecord, meta: &ArtifactMeta, bytes: &[u8]) -> bool {
        bytes.len() as u64 == meta.size
            && serde_json::from_slice::<Value>(bytes)
                .is_ok_and(|v| v.get("job_id").and_then(Value::as_str) == Some(job.id.as_str()))
    }
}

fn file_entry(name: &str, bytes: &[u8]) -> Value {
    json!({"name": name, "size": bytes.len(), "sha256": hex::encode(Sha256::digest(bytes))})
}

/// Creates `dir`, then writes `name` in it atomically and durably.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_renamed(dir, name, bytes, true)
}

/// Writes `bytes` to a temporary name in `dir` (synced first when `sync`),
/// then renames it to `name`: a reader sees the old file or the new one.
fn write_renamed(dir: &Path, name: &str, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::File::create(&tmp)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
    drop(file);
    // A full disk must not leave temporary files behind.
    written
        .and_then(|()| std::fs::rename(&tmp, dir.join(name)))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_writes_result_and_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path()).unwrap();
        let j1 = JobId::new();
        store.write_input(&j1, b"%PDF").unwrap();
        let metas = store
            .package(
                &j1,
                "cmb_1",
                &Outcome::Completed(json!({"quality_score": 0.9})),
            )
            .unwrap();
        assert_eq!(metas.len(), 2);
        let result: Value =
            serde_json::from_slice(&store.read(&j1, RESULT).unwrap().unwrap()).unwrap();
        assert_eq!(result["result"]["quality_score"], 0.9);
        let manifest: Value =
            serde_json::from_slice(&store.read(&j1, MANIFEST).unwrap().unwrap()).unwrap();
        assert_eq!(manifest["files"].as_array().unwrap().len(), 2);
        assert_eq!(store.read(&j1, "../etc").unwrap(), None);
        // Only a UUID becomes a JobId, so no path can climb out of the root.
        for bad in ["../etc", "j1/../../x", "", "a/b"] {
            assert!(JobId::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            store.path(&j1, RESULT),
            dir.path().join(j1.as_str()).join(RESULT)
        );
    }

    fn finished_record(id: &JobId, metas: Vec<ArtifactMeta>) -> JobRecord {
        JobRecord {
            seq: 1,
            id: id.clone(),
            status: Status::Completed,
            portal_schema_name: "s".into(),
            filename: "f.pdf".into(),
            mime_type: "application/pdf".into(),
            file_size_bytes: 4,
            camber_job_id: Some("cmb_1".into()),
            result: Some(json!({"quality_score": 0.9, "pages": [1, 2]})),
            error: None,
            artifacts: metas,
            submit_attempts: 1,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    /// What a power loss can leave of the unsynced result and manifest
    /// (nothing, an empty file, zeros, a short file) is written again from
    /// the committed row, byte for byte what `package` wrote.
    #[test]
    fn derived_files_lost_in_a_crash_are_rebuilt_from_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path()).unwrap();
        let id = JobId::new();
        store.write_input(&id, b"%PDF").unwrap();
        let record = finished_record(&id, Vec::new());
        let outcome = Outcome::Completed(record.result.clone().unwrap());
        let metas = store.package(&id, "cmb_1", &outcome).unwrap();
        let record = finished_record(&id, metas);
        let originals: Vec<Vec<u8>> = [RESULT, MANIFEST]
            .iter()
            .map(|n| std::fs::read(store.path(&id, n)).unwrap())
            .collect();
        for (name, original) in [RESULT, MANIFEST].iter().zip(&originals) {
            let path = store.path(&id, name);
            let size = original.len();
            let damages: [Option<Vec<u8>>; 4] = [
                None,
                Some(Vec::new()),
                Some(vec![0; size]),
                Some(original[..size / 2].to_vec()),
            ];
            for damage in damages {
                match &damage {
                    None => std::fs::remove_file(&path).unwrap(),
                    Some(bytes) => std::fs::write(&path, bytes).unwrap(),
                }
                let served = store.read_derived(&record, name).unwrap().unwrap();
                assert_eq!(&served, original, "{name} after {damage:?}");
                assert_eq!(&std::fs::read(&path).unwrap(), original, "{name} on disk");
            }
            // A whole file is served as it is.
            assert_eq!(
                &store.read_derived(&record, name).unwrap().unwrap(),
                original
            );
        }
        assert_eq!(store.read_derived(&record, INPUT).unwrap(), None);
        assert_eq!(store.read_derived(&record, "x.json").unwrap(), None);
        let leftovers: Vec<_> = std::fs::read_dir(store.job_dir(&id))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
