//! Where a sync source's files go: `<output>/<source>` is a symbolic link to a hidden
//! generation directory (`.<source>-<time>`), as the kubelet publishes a ConfigMap volume. A
//! new set of files is written and flushed (write, fsync) into a new generation directory,
//! checked, and published by renaming a new link over the old one: the policy watcher sees
//! the old set or the new one, never half of each and never a half-written file. Names
//! starting with `.` are never read as policy, so a generation being written is invisible.

use std::io::Write;
use std::path::{Path, PathBuf};

/// One source's place in the output directory.
#[derive(Debug, Clone)]
pub struct SourceDir {
    output: PathBuf,
    name: &'static str,
}

impl SourceDir {
    pub fn new(output: &Path, name: &'static str) -> SourceDir {
        SourceDir {
            output: output.to_path_buf(),
            name,
        }
    }

    /// The published files (`<output>/<source>`).
    pub fn current(&self) -> PathBuf {
        self.output.join(self.name)
    }

    /// Whether a set of files has been published.
    pub fn exists(&self) -> bool {
        self.current().is_dir()
    }

    /// The bytes of a published file, if there is one.
    pub fn read(&self, file: &str) -> Option<Vec<u8>> {
        std::fs::read(self.current().join(file)).ok()
    }

    /// Whether exactly `files` are published: the same names with the same bytes, and no other.
    pub fn holds(&self, files: &[(String, Vec<u8>)]) -> bool {
        self.exists()
            && files
                .iter()
                .all(|(name, bytes)| self.read(name).as_deref() == Some(bytes.as_slice()))
            && count_files(&self.current()) == files.len()
    }

    /// Writes `files` (paths relative to the source's directory) as a new generation, runs
    /// `check` on its directory, and publishes it if the check passes. Old generations but
    /// the one published before are removed (a reader may still be in it).
    pub fn publish(
        &self,
        files: &[(String, Vec<u8>)],
        check: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(), String> {
        std::fs::create_dir_all(&self.output)
            .map_err(|e| format!("cannot create `{}`: {e}", self.output.display()))?;
        let current = self.current();
        if let Ok(meta) = std::fs::symlink_metadata(&current)
            && !meta.file_type().is_symlink()
        {
            return Err(format!(
                "`{}` is not a link the sync made: move it away (the sync publishes each \
                 source as a link to a generation directory)",
                current.display()
            ));
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let generation_name = format!(".{}-{stamp}", self.name);
        let generation = self.output.join(&generation_name);
        let written = write_generation(&generation, files).and_then(|()| check(&generation));
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&generation);
            return Err(e);
        }
        let link = self.output.join(format!(".{}-link", self.name));
        let _ = std::fs::remove_file(&link);
        let swapped = std::os::unix::fs::symlink(&generation_name, &link)
            .and_then(|()| std::fs::rename(&link, &current))
            .and_then(|()| sync_dir(&self.output));
        if let Err(e) = swapped {
            let _ = std::fs::remove_dir_all(&generation);
            return Err(format!("cannot publish `{}`: {e}", current.display()));
        }
        self.remove_old(&generation_name);
        Ok(())
    }

    /// Removes generations older than the newest two.
    fn remove_old(&self, newest: &str) {
        let prefix = format!(".{}-", self.name);
        let Ok(entries) = std::fs::read_dir(&self.output) else {
            return;
        };
        let mut generations: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| {
                n.strip_prefix(&prefix).is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
                })
            })
            .collect();
        // Same width stamps sort by time; the newest two stay.
        generations.sort_by_key(|n| (n.len(), n.clone()));
        let keep = generations.len().saturating_sub(2);
        for old in generations.iter().take(keep) {
            if old != newest {
                let _ = std::fs::remove_dir_all(self.output.join(old));
            }
        }
    }
}

fn write_generation(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), String> {
    let fail = |path: &Path, e: std::io::Error| format!("cannot write `{}`: {e}", path.display());
    std::fs::create_dir(dir).map_err(|e| fail(dir, e))?;
    let mut dirs = vec![dir.to_path_buf()];
    for (name, bytes) in files {
        if Path::new(name)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!("file name `{name}` leaves its directory"));
        }
        let path = dir.join(name);
        if let Some(parent) = path.parent()
            && !dirs.iter().any(|d| d == parent)
        {
            std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
            dirs.push(parent.to_path_buf());
        }
        write_synced(&path, bytes).map_err(|e| fail(&path, e))?;
    }
    for d in dirs.iter().rev() {
        sync_dir(d).map_err(|e| fail(d, e))?;
    }
    Ok(())
}

/// Writes a small file beside the published ones (a name starting with `.`, never read as
/// policy): a temporary file, flushed, then renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write `{}`: {e}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp"));
    write_synced(&temp, bytes).map_err(fail)?;
    std::fs::rename(&temp, path).map_err(fail)
}

/// A file's bytes as JSON the way the sources write them: pretty, with a final newline.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"[]".to_vec());
    bytes.push(b'\n');
    bytes
}

/// Creates `path` with `bytes`, flushed to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Files below `dir` (member files included).
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() { count_files(&path) } else { 1 }
        })
        .sum()
}

/// Flushes a directory's entries (a rename or a new file is durable once its directory is).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(n: u8) -> Vec<(String, Vec<u8>)> {
        vec![
            ("a.json".into(), vec![b'0' + n]),
            ("sub/b.json".into(), b"[]".to_vec()),
        ]
    }

    #[test]
    fn a_generation_is_published_by_one_rename_and_old_ones_go() {
        let out = tempfile::tempdir().unwrap();
        let dir = SourceDir::new(out.path(), "arm");
        assert!(!dir.exists());
        for n in 0..4 {
            dir.publish(&files(n), |_| Ok(())).unwrap();
            assert_eq!(dir.read("a.json"), Some(vec![b'0' + n]));
            assert_eq!(dir.read("sub/b.json"), Some(b"[]".to_vec()));
        }
        assert!(
            std::fs::symlink_metadata(dir.current())
                .unwrap()
                .is_symlink()
        );
        let hidden: Vec<String> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".arm-"))
            .collect();
        assert_eq!(hidden.len(), 2, "{hidden:?}");
    }

    #[test]
    fn a_failed_check_leaves_the_published_files() {
        let out = tempfile::tempdir().unwrap();
        let dir = SourceDir::new(out.path(), "graph");
        dir.publish(&files(1), |_| Ok(())).unwrap();
        let e = dir
            .publish(&files(2), |d| {
                assert!(d.join("a.json").is_file());
                Err("broken".into())
            })
            .unwrap_err();
        assert_eq!(e, "broken");
        assert_eq!(dir.read("a.json"), Some(b"1".to_vec()));
        let entries = std::fs::read_dir(out.path()).unwrap().count();
        assert_eq!(entries, 2, "the failed generation was not removed");
    }

    #[test]
    fn names_that_leave_the_directory_and_foreign_directories_are_refused() {
        let out = tempfile::tempdir().unwrap();
        let dir = SourceDir::new(out.path(), "arm");
        let e = dir
            .publish(&[("../x.json".into(), vec![])], |_| Ok(()))
            .unwrap_err();
        assert!(e.contains("leaves its directory"), "{e}");
        assert!(!out.path().join("x.json").exists());
        std::fs::create_dir(out.path().join("arm")).unwrap();
        let e = dir.publish(&files(1), |_| Ok(())).unwrap_err();
        assert!(e.contains("not a link the sync made"), "{e}");
    }
}
