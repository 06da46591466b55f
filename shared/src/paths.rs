//! How both binaries name their data at start: the absolute path, and
//! whether it is new, so that a typo in `--db` is seen at once instead of
//! giving an empty store without a word; and a one-line reason when the
//! path cannot be used (a directory where a file is meant, a file where a
//! directory is meant) instead of SQLite's or the OS's bare error.

use std::path::{Path, PathBuf};

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `path` (a file) made absolute, and a note: `""` when it exists, else
/// whether only the file or also its directory is about to be created.
pub fn describe(path: &Path) -> (String, &'static str) {
    let abs = absolute(path);
    let note = match abs.parent() {
        _ if abs.exists() => "",
        Some(dir) if !dir.exists() => " (new: its directory did not exist and was created)",
        _ => " (new)",
    };
    (abs.display().to_string(), note)
}

/// `path` (a directory) made absolute, and a note: `""` when it exists,
/// else that it is about to be created.
pub fn describe_dir(path: &Path) -> (String, &'static str) {
    let abs = absolute(path);
    let note = if abs.exists() {
        ""
    } else {
        " (new: the directory did not exist and was created)"
    };
    (abs.display().to_string(), note)
}

/// Why `path` cannot be a file to open or create, if it cannot: it is a
/// directory, or the nearest existing ancestor is not a directory. The
/// reason follows the caller's "cannot open {path}: ". `example` is a file
/// name to suggest inside a directory (`api.db`).
pub fn check_file(path: &Path, example: &str) -> Result<(), String> {
    let abs = absolute(path);
    if abs.is_dir() {
        return Err(format!(
            "it is a directory, not a file (name a file in it, e.g. {})",
            abs.join(example).display()
        ));
    }
    check_ancestors(&abs)
}

/// Why `path` cannot be a directory to use or create, if it cannot: it
/// exists and is not a directory, or an ancestor is not one.
pub fn check_dir(path: &Path) -> Result<(), String> {
    let abs = absolute(path);
    if abs.exists() && !abs.is_dir() {
        return Err("it is a file, not a directory".to_owned());
    }
    check_ancestors(&abs)
}

/// The nearest existing ancestor of `abs` must be a directory, else
/// nothing can be created under it (the OS says only "File exists").
fn check_ancestors(abs: &Path) -> Result<(), String> {
    match abs.ancestors().skip(1).find(|a| a.exists()) {
        Some(a) if !a.is_dir() => Err(format!(
            "{} is a file, not a directory, so nothing can be created under it",
            a.display()
        )),
        _ => Ok(()),
    }
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

    #[test]
    fn a_new_directory_says_it_is_created() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(describe_dir(dir.path()).1, "");
        let (p, note) = describe_dir(&dir.path().join("artifacts"));
        assert!(p.ends_with("/artifacts"), "{p}");
        assert_eq!(note, " (new: the directory did not exist and was created)");
    }

    #[test]
    fn a_directory_where_a_file_is_meant_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        assert_eq!(
            check_file(dir.path(), "api.db"),
            Err(format!(
                "it is a directory, not a file (name a file in it, e.g. {d}/api.db)"
            ))
        );
        assert_eq!(check_file(&dir.path().join("new/sub/a.db"), "a.db"), Ok(()));
        assert_eq!(check_dir(&dir.path().join("new/sub")), Ok(()));
    }

    #[test]
    fn a_file_where_a_directory_is_meant_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(
            check_file(&file.join("sub/a.db"), "a.db"),
            Err(format!(
                "{d}/f is a file, not a directory, so nothing can be created under it"
            ))
        );
        assert_eq!(check_file(&file, "a.db"), Ok(()));
        assert_eq!(
            check_dir(&file),
            Err("it is a file, not a directory".to_owned())
        );
        assert_eq!(
            check_dir(&file.join("art")),
            Err(format!(
                "{d}/f is a file, not a directory, so nothing can be created under it"
            ))
        );
    }
}
