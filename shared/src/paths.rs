//! How both binaries name their data at start: the absolute path, and
//! whether it is new, so that a typo in `--db` is seen at once instead of
//! giving an empty store without a word.

use std::path::Path;

/// `path` made absolute, and a note: `""` when it exists, else whether only
/// the file or also its directory is about to be created.
pub fn describe(path: &Path) -> (String, &'static str) {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let note = match abs.parent() {
        _ if abs.exists() => "",
        Some(dir) if !dir.exists() => " (new: its directory did not exist and was created)",
        _ => " (new)",
    };
    (abs.display().to_string(), note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_and_say_whether_they_are_new() {
        let dir = tempfile::tempdir().unwrap();
        let (p, note) = describe(dir.path());
        assert_eq!((p.as_str(), note), (dir.path().to_str().unwrap(), ""));
        let (p, note) = describe(&dir.path().join("a.db"));
        assert!(p.ends_with("/a.db") && p.starts_with('/'), "{p}");
        assert_eq!(note, " (new)");
        let (_, note) = describe(&dir.path().join("typo/a.db"));
        assert!(note.contains("directory did not exist"), "{note}");
        let (p, _) = describe(Path::new("relative.db"));
        assert!(p.starts_with('/'), "{p}");
    }
}
