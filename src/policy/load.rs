//! Reading policy directories from disk.
//!
//! Every `*.json`, `*.yaml` and `*.yml` file below each directory is read, in path order.
//! Entries whose name starts with `.` are skipped: Kubernetes ConfigMap and Secret volumes
//! keep the real files in `..data/` and `..<timestamp>/` and link them from the top, so
//! reading both would load every object twice.

use super::parse::{Format, parse_text};
use super::{Diagnostic, LoadError, Origin, PolicySet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// Reads every policy file below `dirs` (a directory or a single file each).
/// Any error diagnostic fails the whole load; warnings are returned with the set.
/// Also returns a fingerprint of every file's path and bytes, so a periodic re-read that
/// finds nothing changed can skip building a new generation.
pub fn load_paths(dirs: &[PathBuf]) -> Result<(PolicySet, Vec<Diagnostic>, u64), LoadError> {
    let mut set = PolicySet::default();
    let mut diagnostics = Vec::new();
    let mut fingerprint = std::hash::DefaultHasher::new();
    for dir in dirs {
        let mut files = Vec::new();
        if let Err(e) = collect_files(dir, &mut files) {
            diagnostics.push(Diagnostic::error(
                Origin::new(dir.display().to_string(), "-"),
                format!("cannot read policy path: {e}"),
            ));
            continue;
        }
        files.sort();
        for file in files {
            let Some(format) = Format::of_path(&file) else {
                continue;
            };
            let name = file.display().to_string();
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    name.hash(&mut fingerprint);
                    text.hash(&mut fingerprint);
                    parse_text(&name, &text, format, &mut set, &mut diagnostics)
                }
                Err(e) => diagnostics.push(Diagnostic::error(
                    Origin::new(name, "-"),
                    format!("cannot read file: {e}"),
                )),
            }
        }
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(LoadError(diagnostics));
    }
    Ok((set, diagnostics, fingerprint.finish()))
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let child = entry.path();
        // Follow symlinks: ConfigMap mounts link every file.
        let meta = std::fs::metadata(&child)?;
        if meta.is_dir() {
            collect_files(&child, out)?;
        } else if meta.is_file() && Format::of_path(&child).is_some() {
            out.push(child);
        }
    }
    Ok(())
}
