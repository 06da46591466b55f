//! The artifact store on disk: `$ARTIFACT_DIR/<job_id>/{input,result.json,manifest.json}`.
//! Every file is written to a temporary name and renamed into place, so a
//! reader never sees half a file. All calls are blocking: run them off the
//! async executor.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::domain::{JobId, Outcome};
use crate::store::ArtifactMeta;

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
    /// sizes and SHA-256 digests). Returns what to record on the job.
    pub fn package(
        &self,
        job_id: &JobId,
        camber_job_id: &str,
        outcome: &Outcome,
    ) -> std::io::Result<Vec<ArtifactMeta>> {
        let dir = self.job_dir(job_id);
        let result = match outcome {
            Outcome::Completed(r) => {
                json!({"job_id": job_id, "camber_job_id": camber_job_id, "status": "completed", "result": r})
            }
            Outcome::Failed(e) => {
                json!({"job_id": job_id, "camber_job_id": camber_job_id, "status": "failed", "error": e})
            }
        };
        let result_bytes = serde_json::to_vec_pretty(&result)?;
        write_atomically(&dir, RESULT, &result_bytes)?;

        let mut files = vec![file_entry(RESULT, &result_bytes)];
        if let Ok(input) = std::fs::read(dir.join(INPUT)) {
            files.push(file_entry(INPUT, &input));
        }
        let manifest = json!({
            "job_id": job_id,
            "camber_job_id": camber_job_id,
            "status": outcome.status().as_str(),
            "files": files,
        });
        let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
        write_atomically(&dir, MANIFEST, &manifest_bytes)?;

        Ok(vec![
            ArtifactMeta {
                name: RESULT.into(),
                size: result_bytes.len() as u64,
            },
            ArtifactMeta {
                name: MANIFEST.into(),
                size: manifest_bytes.len() as u64,
            },
        ])
    }
}

fn file_entry(name: &str, bytes: &[u8]) -> Value {
    json!({"name": name, "size": bytes.len(), "sha256": hex::encode(Sha256::digest(bytes))})
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name)).inspect_err(|_| {
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
}
