//! Reading policy directories from disk.
//!
//! Every `*.json`, `*.yaml` and `*.yml` file below each directory is read, in path order.
//! Entries whose name starts with `.` are skipped: Kubernetes ConfigMap and Secret volumes
//! keep the real files in `..data/` and `..<timestamp>/` and link them from the top, so
//! reading both would load every object twice.

use super::parse::{
    Format, Streamed, note_member_file, parse_json_reader, parse_json_str, parse_text,
};
use super::{Diagnostic, LoadError, Origin, PolicySet, pace};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What reading each policy file produced, kept from one load to the next: a file whose
/// bytes are unchanged is not parsed again. A reload after one small file changed then reads
/// and hashes every file but parses only that one (parsing is most of a reload's CPU, and a
/// reload's CPU is taken from decisions on a busy core). Files parsed straight from disk
/// (above [`STREAM_FILES_ABOVE`]) are not kept, so the memory held stays bounded by what a
/// load reads into memory anyway.
///
/// With [`ParsedFiles::trust_stamps`] on, a file whose [`FileStamp`] is the one it had when it
/// was last read is not even read: device, inode, size, modification and change times all
/// equal, the test git makes of its index. A stamp is kept only for a file that had been still
/// for [`SETTLED`] when it was read, so a write in the same clock tick as the read cannot hide
/// behind an equal stamp (git's "racily clean" rule). The change time cannot be set from user
/// space, so restoring a file's modification time after rewriting it does not hide the write.
#[derive(Debug)]
pub struct ParsedFiles {
    files: HashMap<String, ParsedFile>,
    trust_stamps: bool,
    /// [`SETTLED`], shorter in tests.
    settled: std::time::Duration,
    /// Files taken by their stamp, unread, in the last load.
    unread: usize,
    /// When set, a file changed less than this long ago is not read: it may be half written.
    /// The content read before keeps serving (see [`Reading::unsettled`]).
    settle: Option<std::time::Duration>,
    /// Each unsettled file's stamp and when this process first saw it: a stamp unchanged for
    /// the settle time by this process's own clock counts as settled, whatever the file's
    /// times say (a time in the future, or from a skewed clock, would otherwise hold it).
    observed: HashMap<String, (FileStamp, std::time::Instant)>,
}

impl Default for ParsedFiles {
    fn default() -> Self {
        ParsedFiles {
            files: HashMap::new(),
            trust_stamps: false,
            settled: SETTLED,
            unread: 0,
            settle: None,
            observed: HashMap::new(),
        }
    }
}

#[derive(Debug)]
struct ParsedFile {
    /// Hash of the file's bytes.
    hash: u64,
    /// The file's metadata when it was read, if it had settled by then.
    stamp: Option<FileStamp>,
    set: PolicySet,
    diagnostics: Vec<Diagnostic>,
}

impl ParsedFile {
    /// Adds what the file parsed to, as a fresh read of it would.
    fn add_to(&self, set: &mut PolicySet, diagnostics: &mut Vec<Diagnostic>) {
        set.extend_from(&self.set);
        diagnostics.extend(self.diagnostics.iter().cloned());
    }
}

/// How long a file must have been unchanged when it is read for its metadata to stand for
/// its bytes afterwards: longer than the coarsest file-system timestamp in use (2 s on FAT).
const SETTLED: std::time::Duration = std::time::Duration::from_secs(3);

/// What a file's metadata says about its identity and last change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileStamp {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        Some(FileStamp {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// Without a change time the metadata can be made to lie: every file is read.
    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Option<FileStamp> {
        None
    }

    /// The stamp if both times lie at least `settled` before `read_at`.
    fn settled(self, read_at: std::time::SystemTime, settled: std::time::Duration) -> Option<Self> {
        let Ok(now) = read_at.duration_since(std::time::UNIX_EPOCH) else {
            return None;
        };
        let limit = now.checked_sub(settled)?;
        let before = |(secs, nanos): (i64, i64)| {
            let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
                return false;
            };
            std::time::Duration::new(secs, nanos) < limit
        };
        (before(self.modified) && before(self.changed)).then_some(self)
    }

    /// How long until both times lie `settle` before now, if they do not yet (`None`: the
    /// file has been still for `settle`). A time in the future, or one that cannot be read,
    /// counts as now.
    fn settles_in(
        self,
        now: std::time::SystemTime,
        settle: std::time::Duration,
    ) -> Option<std::time::Duration> {
        let at = |(secs, nanos): (i64, i64)| {
            let secs = u64::try_from(secs).ok()?;
            let nanos = u32::try_from(nanos).ok()?;
            Some(std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
        };
        // A time that cannot be read counts as now.
        let (Some(modified), Some(changed)) = (at(self.modified), at(self.changed)) else {
            return Some(settle);
        };
        let age = now
            .duration_since(modified.max(changed))
            .unwrap_or_default();
        settle.checked_sub(age).filter(|d| !d.is_zero())
    }
}

impl ParsedFiles {
    /// Files kept.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether the next loads may take a settled file by its metadata without reading it
    /// (off by default: every file is read and hashed).
    pub fn trust_stamps(&mut self, trust: bool) {
        self.trust_stamps = trust;
    }

    /// How many files the last load took by their metadata, unread.
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// How long until the file `name` with `stamp` counts as settled, if it does not yet: its
    /// times lie within the settle time of `now` (or cannot be read), and this process has
    /// not seen the same stamp for the settle time either.
    fn settles_in(
        &mut self,
        name: &str,
        stamp: FileStamp,
        now: std::time::SystemTime,
    ) -> Option<std::time::Duration> {
        let settle = self.settle?;
        let by_times = stamp.settles_in(now, settle)?;
        let seen = std::time::Instant::now();
        let (observed, since) = self
            .observed
            .entry(name.to_string())
            .or_insert((stamp, seen));
        if *observed != stamp {
            (*observed, *since) = (stamp, seen);
        }
        let still = since.elapsed();
        let by_clock = settle.checked_sub(still).filter(|d| !d.is_zero())?;
        Some(by_times.min(by_clock))
    }

    /// A file not to be read yet: its previous content, if any, stands in for it.
    fn unsettled(&self, name: &str, settles_in: std::time::Duration) -> FileRead {
        FileRead::Unsettled(UnsettledFile {
            previous_kept: self.files.get(name).map(|k| k.hash),
            settles_in,
        })
    }

    /// The kept parse of `name`, unread, when stamps are trusted and the file's settled
    /// stamp is unchanged since it was read.
    fn kept_by_stamp(&mut self, name: &str, stamp: Option<FileStamp>) -> Option<FileRead> {
        if !self.trust_stamps {
            return None;
        }
        let kept = self.files.get(name)?;
        if kept.stamp.is_none() || kept.stamp != stamp {
            return None;
        }
        let hash = kept.hash;
        self.unread += 1;
        Some(FileRead::kept(name, hash))
    }

    /// Keeps a file's new parse under its name; the parse it replaces is taken apart here.
    fn keep(&mut self, name: &str, file: ParsedFile) {
        if let Some(replaced) = self.files.insert(name.to_string(), file) {
            replaced.set.dismantle();
        }
    }

    /// Files changed less than `settle` before a load are not read by it (None: every file
    /// is read, as the CLI does). A writer that pauses mid-file then never has its half
    /// published; the file's previous content keeps serving until it has been still.
    pub fn settle_files(&mut self, settle: Option<std::time::Duration>) {
        self.settle = settle.filter(|d| !d.is_zero());
    }
}

/// The policy files read, in path order, but not yet put together: a reload that finds the
/// fingerprint of the policy it serves stops here, before copying anything.
#[derive(Debug)]
pub struct Reading {
    parts: Vec<Part>,
    /// Of every file's path and bytes.
    pub fingerprint: u64,
    /// Files still being written (changed within the settle time), with how long until each
    /// has been still for it.
    pub unsettled: Vec<Unsettled>,
}

/// A policy file changed too recently to be read.
#[derive(Debug, Clone)]
pub struct Unsettled {
    pub file: String,
    /// Whether the content read before stands in for it; if not, nothing can (a new file, or
    /// the first load), and the load must wait.
    pub previous_kept: bool,
    /// How long until it has been still for the settle time, if it is not written again.
    pub settles_in: std::time::Duration,
}

/// What one file contributes.
#[derive(Debug)]
enum Part {
    /// Its parse kept in [`ParsedFiles`] under this name, of the bytes with this hash.
    Kept { name: String, hash: u64 },
    /// Parsed now and not kept (no [`ParsedFiles`], or streamed from disk).
    Read(Box<(PolicySet, Vec<Diagnostic>)>),
    /// A directory or file that could not be read.
    Unreadable(Diagnostic),
}

/// Reads (or, for unchanged files, looks up in `parsed`) every policy file below `dirs`,
/// keeping what it parses in `parsed`; files no longer found are dropped from it.
pub fn read_paths(dirs: &[PathBuf], mut parsed: Option<&mut ParsedFiles>) -> Reading {
    let mut seen = HashSet::new();
    if let Some(parsed) = parsed.as_deref_mut() {
        parsed.unread = 0;
    }
    let mut parts = Vec::new();
    let mut unsettled = Vec::new();
    let mut fingerprint = std::hash::DefaultHasher::new();
    for dir in dirs {
        let mut files = Vec::new();
        let mut problems = Vec::new();
        collect_files(dir, &mut files, &mut problems);
        parts.extend(problems.into_iter().map(Part::Unreadable));
        files.sort();
        for file in files {
            let Some(format) = Format::of_path(&file) else {
                continue;
            };
            let name = file.display().to_string();
            name.hash(&mut fingerprint);
            match read_file(
                &file,
                &name,
                format,
                STREAM_FILES_ABOVE,
                parsed.as_deref_mut(),
            ) {
                Ok(FileRead::Done(hash, part)) => {
                    fingerprint.write_u64(hash);
                    parts.push(part);
                    seen.insert(name);
                }
                Ok(FileRead::Unsettled(file)) => {
                    if let Some(hash) = file.previous_kept {
                        fingerprint.write_u64(hash);
                        parts.push(Part::Kept {
                            name: name.clone(),
                            hash,
                        });
                    }
                    unsettled.push(Unsettled {
                        file: name.clone(),
                        previous_kept: file.previous_kept.is_some(),
                        settles_in: file.settles_in,
                    });
                    seen.insert(name);
                }
                Err(e) => parts.push(Part::Unreadable(Diagnostic::error(
                    Origin::new(name, "-"),
                    format!("cannot read file: {e}"),
                ))),
            }
        }
    }
    if let Some(parsed) = parsed {
        parsed.files.retain(|name, _| seen.contains(name));
        parsed.observed.retain(|name, _| seen.contains(name));
    }
    Reading {
        parts,
        fingerprint: fingerprint.finish(),
        unsettled,
    }
}

/// What [`read_file`] found.
#[derive(Debug)]
enum FileRead {
    /// The hash of the file's bytes and what it contributes.
    Done(u64, Part),
    /// Changed within the settle time: not read.
    Unsettled(UnsettledFile),
}

impl FileRead {
    /// Read (or taken unread) with its parse kept in [`ParsedFiles`] under `name`.
    fn kept(name: &str, hash: u64) -> FileRead {
        FileRead::Done(
            hash,
            Part::Kept {
                name: name.to_string(),
                hash,
            },
        )
    }
}

#[derive(Debug)]
struct UnsettledFile {
    /// The hash of the content kept from an earlier read, if any.
    previous_kept: Option<u64>,
    settles_in: std::time::Duration,
}

impl Reading {
    /// Whether every directory and file could be read.
    pub fn all_read(&self) -> bool {
        !self.parts.iter().any(|p| matches!(p, Part::Unreadable(_)))
    }

    /// Puts the files' objects together in path order, copying kept parses from `parsed` (the
    /// one given to [`read_paths`]). Any error diagnostic fails the whole load; warnings are
    /// returned with the set.
    pub fn assemble(
        self,
        parsed: Option<&ParsedFiles>,
    ) -> Result<(PolicySet, Vec<Diagnostic>), LoadError> {
        let parts = self.parts;
        let mut diagnostics = Vec::new();
        let mut set = PolicySet::default();
        // Only the right parse of the right bytes will do.
        let kept = |name: &str, hash: u64| {
            parsed
                .and_then(|p| p.files.get(name))
                .filter(|k| k.hash == hash)
        };
        // Room for the kept parses, which are copied; a file parsed now is moved in (the
        // first one taken over whole).
        set.reserve_for(parts.iter().filter_map(|part| match part {
            Part::Kept { name, hash } => kept(name, *hash).map(|k| &k.set),
            Part::Read(_) | Part::Unreadable(_) => None,
        }));
        for part in parts {
            match part {
                Part::Kept { name, hash } => match kept(&name, hash) {
                    Some(k) => k.add_to(&mut set, &mut diagnostics),
                    None => diagnostics.push(Diagnostic::error(
                        Origin::new(name, "-"),
                        "the file changed while the policy was read; the next reload reads it again",
                    )),
                },
                Part::Read(read) => {
                    let (read, mut found) = *read;
                    set.extend(read);
                    diagnostics.append(&mut found);
                }
                Part::Unreadable(problem) => diagnostics.push(problem),
            }
        }
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(LoadError(diagnostics));
        }
        Ok((set, diagnostics))
    }
}

/// JSON files larger than this are parsed straight from disk, so a reload never holds their
/// text: reading from a file parses at about half the speed of parsing text in memory, and
/// what such a file parsed to is not kept. 256 MiB holds one `az role assignment list` of
/// ~250k assignments (100k is ~90 MB), so a policy of that size is parsed once, not at every
/// reload (with 100k in one file: ~460 ms of CPU per reload when it was re-parsed).
const STREAM_FILES_ABOVE: u64 = 256 << 20;

/// Reads and parses one file and returns the hash of its bytes and what it contributes. JSON is read one list
/// element at a time (see [`parse_json_reader`]); YAML is read whole. A file read into
/// memory is taken from `parsed` if its bytes are unchanged (or, trusting stamps, its
/// metadata), and kept there otherwise, with its stamp if it had been still for [`SETTLED`].
fn read_file(
    path: &Path,
    name: &str,
    format: Format,
    stream_above: u64,
    mut parsed: Option<&mut ParsedFiles>,
) -> std::io::Result<FileRead> {
    // Before opening: a write after this instant leaves a time at or after it.
    let read_at = std::time::SystemTime::now();
    let mut file = open_regular(path)?;
    let meta = file.metadata()?;
    let stamp = FileStamp::of(&meta);
    if let Some(parsed) = parsed.as_deref_mut()
        && let Some(kept) = parsed.kept_by_stamp(name, stamp)
    {
        return Ok(kept);
    }
    if let Some(parsed) = parsed.as_deref_mut()
        && let Some(stamp) = stamp
        && let Some(settles_in) = parsed.settles_in(name, stamp, read_at)
    {
        return Ok(parsed.unsettled(name, settles_in));
    }
    if format == Format::Json && meta.len() > stream_above {
        if let Some(parsed) = parsed {
            parsed.files.remove(name);
        }
        return read_streamed(file, path, name, format);
    }
    let mut content = ContentHash::new();
    let text = read_paced(&mut file, &mut content)?;
    let hash = content.finish();
    // Written while it was read: what was read may be half of either version.
    if let Some(parsed) = parsed.as_deref_mut()
        && let Some(settle) = parsed.settle
        && FileStamp::of(&file.metadata()?) != stamp
    {
        return Ok(parsed.unsettled(name, settle));
    }
    let settled = parsed.as_deref().map_or(SETTLED, |p| p.settled);
    let stamp = stamp.and_then(|s| s.settled(read_at, settled));
    if let Some(kept) = parsed
        .as_deref_mut()
        .and_then(|p| p.files.get_mut(name))
        .filter(|k| k.hash == hash)
    {
        kept.stamp = stamp;
        return Ok(FileRead::kept(name, hash));
    }
    let (read, found) = parse_whole(name, &text, format);
    drop(text);
    let Some(parsed) = parsed else {
        return Ok(FileRead::Done(hash, Part::Read(Box::new((read, found)))));
    };
    parsed.keep(
        name,
        ParsedFile {
            hash,
            stamp,
            set: read,
            diagnostics: found,
        },
    );
    Ok(FileRead::kept(name, hash))
}

/// Parses a large JSON file straight from disk while hashing its bytes, so its text is
/// never held; a file that is not one JSON container is read whole after all.
fn read_streamed(
    file: std::fs::File,
    path: &Path,
    name: &str,
    format: Format,
) -> std::io::Result<FileRead> {
    let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
    let mut content = ContentHash::new();
    let mut hashing = Hashing {
        inner: file,
        hasher: &mut content,
        error: None,
    };
    let streamed = parse_json_reader(
        name,
        std::io::BufReader::with_capacity(1 << 16, &mut hashing),
        &mut set,
        &mut diagnostics,
    );
    if let Some(e) = hashing.error {
        return Err(e);
    }
    if streamed == Streamed::NotAContainer {
        let text = std::fs::read_to_string(path)?;
        parse_text(name, &text, format, &mut set, &mut diagnostics);
    }
    note_member_file(name, &mut set);
    Ok(FileRead::Done(
        content.finish(),
        Part::Read(Box::new((set, diagnostics))),
    ))
}

/// Parses a file's text held in memory: JSON one list element at a time where it is a
/// container, YAML (and any other JSON) as one document.
fn parse_whole(name: &str, text: &str, format: Format) -> (PolicySet, Vec<Diagnostic>) {
    let (mut read, mut found) = (PolicySet::default(), Vec::new());
    if format == Format::Yaml
        || parse_json_str(name, text, &mut read, &mut found) == Streamed::NotAContainer
    {
        parse_text(name, text, format, &mut read, &mut found);
    }
    note_member_file(name, &mut read);
    (read, found)
}

/// Opens `path` for reading only if it is a regular file (after following links). The
/// open does not block: a FIFO swapped in between the check and the open would otherwise
/// hold the reload until a writer came.
fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let kind = std::fs::metadata(path)?.file_type();
    if !kind.is_file() {
        return Err(not_regular(kind));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(not_regular(kind));
    }
    Ok(file)
}

fn not_regular(kind: std::fs::FileType) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{}, not a regular file", describe(kind)),
    )
}

/// What a directory entry is, in words.
fn describe(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "neither a file nor a directory"
    }
}

/// The hash of a file's bytes, however they arrive. aHash reads 16 bytes per step with the
/// CPU's AES rounds, ~10× faster than the standard library's SipHash (which took 6 ms of a
/// 15 ms reload of 9 MB of policy); as it hashes each `write` as a unit, the bytes are fed
/// to it in fixed blocks. Keyed at random once per process: a file's hash is only compared
/// with its own earlier hash in the same process.
struct ContentHash {
    hasher: ahash::AHasher,
    block: Vec<u8>,
}

impl ContentHash {
    const BLOCK: usize = 64 << 10;

    fn new() -> Self {
        static KEYS: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
        ContentHash {
            hasher: KEYS.get_or_init(ahash::RandomState::new).build_hasher(),
            block: Vec::new(),
        }
    }

    fn add(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        if !self.block.is_empty() {
            let (head, tail) = rest.split_at((Self::BLOCK - self.block.len()).min(rest.len()));
            self.block.extend_from_slice(head);
            rest = tail;
            if self.block.len() < Self::BLOCK {
                return;
            }
            self.hasher.write(&self.block);
            self.block.clear();
        }
        let mut blocks = rest.chunks_exact(Self::BLOCK);
        for block in &mut blocks {
            self.hasher.write(block);
        }
        self.block.extend_from_slice(blocks.remainder());
    }

    fn finish(mut self) -> u64 {
        if !self.block.is_empty() {
            self.hasher.write(&self.block);
        }
        self.hasher.finish()
    }
}

/// Reads a whole file as text, adding its bytes to `content`, a piece at a time with a
/// [`pace::check`] between pieces.
fn read_paced(file: &mut std::fs::File, content: &mut ContentHash) -> std::io::Result<String> {
    const PIECE: u64 = 256 << 10;
    let size = file.metadata().map_or(0, |m| m.len());
    // One allocation of the right size: growing by doubling copies and faults the text in
    // again at each step.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    loop {
        let start = bytes.len();
        if file.take(PIECE).read_to_end(&mut bytes)? == 0 {
            break;
        }
        content.add(bytes.get(start..).unwrap_or_default());
        pace::check();
    }
    String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// A reader that feeds every byte it reads to a hasher, and keeps the first I/O error (the
/// JSON parser would otherwise report it as a syntax error).
struct Hashing<'a, R> {
    inner: R,
    hasher: &'a mut ContentHash,
    error: Option<std::io::Error>,
}

impl<R: Read> Read for &mut Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.add(buf.get(..n).unwrap_or_default());
                Ok(n)
            }
            Err(e) => {
                let message = e.to_string();
                self.error.get_or_insert(e);
                Err(std::io::Error::other(message))
            }
        }
    }
}

/// Collects the policy files below `path` (a directory, or a file given by name). Entries
/// that are not policy files are ignored, whatever they are; a policy-file name that is not
/// a readable regular file (a dangling link, a directory, a FIFO, a device) is a problem
/// naming it, never an empty file.
fn collect_files(path: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Diagnostic>) {
    let problem = |at: &Path, message: String| {
        Diagnostic::error(Origin::new(at.display().to_string(), "-"), message)
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            problems.push(problem(path, format!("cannot read policy path: {e}")));
            return;
        }
    };
    if !meta.is_dir() {
        if meta.is_file() && Format::of_path(path).is_some() {
            out.push(path.to_path_buf());
        } else if meta.is_file() {
            // Named on purpose: skipping it would read as a policy without its objects.
            problems.push(problem(
                path,
                "policy path is a file without a `.json`, `.yaml` or `.yml` name".into(),
            ));
        } else {
            problems.push(problem(
                path,
                format!(
                    "policy path is {}, not a directory or a regular file",
                    describe(meta.file_type())
                ),
            ));
        }
        return;
    }
    let mut visited = HashSet::new();
    walk(path, 0, &mut visited, out, problems);
}

/// Directory levels followed below a policy path; deeper is a link loop or a mistake.
const MAX_DEPTH: usize = 32;

fn walk(
    dir: &Path,
    depth: usize,
    visited: &mut HashSet<(u64, u64)>,
    out: &mut Vec<PathBuf>,
    problems: &mut Vec<Diagnostic>,
) {
    let problem = |at: &Path, message: String| {
        Diagnostic::error(Origin::new(at.display().to_string(), "-"), message)
    };
    // Links are followed (ConfigMap mounts link every file), so a link back up would loop.
    if let Some(id) = dir_identity(dir)
        && !visited.insert(id)
    {
        problems.push(problem(dir, "directory reached twice through links".into()));
        return;
    }
    if depth > MAX_DEPTH {
        problems.push(problem(dir, "policy directories nest too deep".into()));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(problem(dir, format!("cannot read policy directory: {e}")));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(problem(dir, format!("cannot read policy directory: {e}")));
                continue;
            }
        };
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let child = entry.path();
        let policy_file = Format::of_path(&child).is_some();
        match std::fs::metadata(&child) {
            Ok(meta) if meta.is_dir() => {
                if policy_file {
                    problems.push(problem(
                        &child,
                        "a directory has a policy file's name; expected a policy file".into(),
                    ));
                } else {
                    walk(&child, depth + 1, visited, out, problems);
                }
            }
            Ok(meta) if meta.is_file() => {
                if policy_file {
                    out.push(child);
                }
            }
            Ok(meta) => {
                if policy_file {
                    problems.push(problem(&child, not_regular(meta.file_type()).to_string()));
                }
            }
            Err(e) => {
                if policy_file {
                    let what = if std::fs::symlink_metadata(&child).is_ok_and(|m| m.is_symlink()) {
                        "dangling link"
                    } else {
                        "cannot read"
                    };
                    problems.push(problem(&child, format!("{what}: {e}")));
                }
            }
        }
    }
}

#[cfg(unix)]
fn dir_identity(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn dir_identity(_dir: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads and puts together in one step (the server reads first and stops there when
    /// nothing changed; `crate::read_sources`).
    fn load_paths_with(
        dirs: &[PathBuf],
        mut parsed: Option<&mut ParsedFiles>,
    ) -> Result<(PolicySet, Vec<Diagnostic>, u64), LoadError> {
        let reading = read_paths(dirs, parsed.as_deref_mut());
        let fingerprint = reading.fingerprint;
        let (set, diagnostics) = reading.assemble(parsed.as_deref())?;
        Ok((set, diagnostics, fingerprint))
    }

    fn load_paths(dirs: &[PathBuf]) -> Result<(PolicySet, Vec<Diagnostic>, u64), LoadError> {
        load_paths_with(dirs, None)
    }

    #[test]
    fn streamed_files_fall_back_to_a_whole_parse_and_are_fingerprinted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("a.json");
        // Not a container: `id` after the streamed `value` list.
        std::fs::write(&file, r#"{"value":[{"kind":"Role"}],"id":"x"}"#).expect("write");
        let diagnostics = match load_paths(&[dir.path().to_path_buf()]) {
            Err(LoadError(d)) => d,
            Ok(_) => Vec::new(),
        };
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert!(
            diagnostics[0]
                .to_string()
                .contains("a.json: $: unknown policy object"),
            "{}",
            diagnostics[0]
        );

        // The same file streamed from disk (as files above the threshold are).
        let name = file.display().to_string();
        let Ok(FileRead::Done(_, part)) = read_file(&file, &name, Format::Json, 0, None) else {
            panic!("readable");
        };
        let Part::Read(read) = part else {
            panic!("a file read without kept parses is not kept: {part:?}");
        };
        assert_eq!(read.1, diagnostics);

        let fingerprint = |text: &str| {
            std::fs::write(&file, text).expect("write");
            load_paths(&[dir.path().to_path_buf()])
                .map(|(_, _, f)| f)
                .ok()
        };
        let empty = fingerprint("[]");
        assert!(empty.is_some());
        assert_eq!(empty, fingerprint("[]"));
        assert_ne!(empty, fingerprint("[ ]"));
    }

    /// One Kubernetes Role named `name` in namespace `ns`, as a JSON policy file.
    fn role_file(ns: &str, name: &str) -> String {
        format!(
            r#"{{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{{"name":"{name}","namespace":"{ns}"}},"rules":[]}}"#
        )
    }

    /// A directory with `a.json` (Role ns-a/one) and `b.json` (Role ns-b/two).
    fn two_role_files() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        std::fs::write(&a, role_file("ns-a", "one")).expect("write");
        std::fs::write(&b, role_file("ns-b", "two")).expect("write");
        (dir, a, b)
    }

    /// The set's Roles as `namespace/name`, sorted.
    #[test]
    fn a_reading_is_put_together_only_from_the_parses_of_the_bytes_it_read() {
        let (dir, a, _) = two_role_files();
        let dirs = vec![dir.path().to_path_buf()];
        let mut parsed = ParsedFiles::default();
        let first = read_paths(&dirs, Some(&mut parsed));
        assert!(first.all_read());
        // Unchanged files: the same parses, the same set.
        let again = read_paths(&dirs, Some(&mut parsed));
        assert_eq!(again.fingerprint, first.fingerprint);
        let (set, _) = again.assemble(Some(&parsed)).expect("assembles");
        assert_eq!(role_names(&set), ["ns-a/one", "ns-b/two"]);
        // A later read replaced a.json's parse: the earlier reading cannot use it.
        std::fs::write(&a, role_file("ns-a", "changed")).expect("write");
        let later = read_paths(&dirs, Some(&mut parsed));
        assert_ne!(later.fingerprint, first.fingerprint);
        let Err(LoadError(diagnostics)) = first.assemble(Some(&parsed)) else {
            panic!("a stale reading must not assemble");
        };
        assert!(
            diagnostics
                .iter()
                .any(|d| d.is_error() && d.to_string().contains("a.json")),
            "{diagnostics:?}"
        );
        let (set, _) = later.assemble(Some(&parsed)).expect("assembles");
        assert_eq!(role_names(&set), ["ns-a/changed", "ns-b/two"]);
    }

    fn role_names(set: &PolicySet) -> Vec<String> {
        let mut n: Vec<String> = set
            .roles
            .iter()
            .map(|(_, r)| format!("{}/{}", r.metadata.namespace, r.metadata.name))
            .collect();
        n.sort();
        n
    }

    #[test]
    fn parsed_files_are_reused_only_while_their_bytes_are_unchanged() {
        let (dir, a, b) = two_role_files();
        let dirs = [dir.path().to_path_buf()];
        let mut parsed = ParsedFiles::default();
        let (first, _, f1) = load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        assert_eq!(role_names(&first), ["ns-a/one", "ns-b/two"]);
        assert_eq!(parsed.len(), 2);

        // Unchanged: the same set and fingerprint, taken from what was kept.
        let (again, _, f2) = load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        assert_eq!(role_names(&again), role_names(&first));
        assert_eq!(f1, f2);

        // Same length, new bytes: judged by content, not by size or time.
        std::fs::write(&a, role_file("ns-a", "uno")).expect("write");
        let (changed, _, f3) = load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        assert_eq!(role_names(&changed), ["ns-a/uno", "ns-b/two"]);
        assert_ne!(f2, f3);

        // A broken file fails every load while it is unchanged, kept or not.
        std::fs::write(&b, "{\"kind\": \"Role\"").expect("write");
        for _ in 0..2 {
            let Err(LoadError(d)) = load_paths_with(&dirs, Some(&mut parsed)) else {
                panic!("a broken file must fail the load");
            };
            assert!(
                d.iter()
                    .any(|d| d.is_error() && d.origin.file.ends_with("b.json")),
                "{d:?}"
            );
        }

        // A removed file is forgotten.
        std::fs::remove_file(&b).expect("remove");
        let (left, _, _) = load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        assert_eq!(role_names(&left), ["ns-a/uno"]);
        assert_eq!(parsed.len(), 1);
    }

    #[test]
    fn settled_files_are_taken_by_their_metadata_and_every_change_is_still_read() {
        let (dir, a, b) = two_role_files();
        let dirs = [dir.path().to_path_buf()];
        let mut parsed = ParsedFiles {
            settled: std::time::Duration::from_millis(50),
            ..ParsedFiles::default()
        };
        parsed.trust_stamps(true);
        // Read while they may still be changing: no stamp kept, so read again.
        load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        assert_eq!(parsed.unread(), 0);
        std::thread::sleep(std::time::Duration::from_millis(100));
        // Settled when read: the stamp is kept, and the next load takes both unread.
        let (first, _, f1) = load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        let (again, _, f2) = load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        assert_eq!(parsed.unread(), 2);
        assert_eq!((role_names(&again), f2), (role_names(&first), f1));

        // Rewritten in place, same length, its modification time put back: the change time
        // moved, so the file is read and the new role seen.
        let modified = std::fs::metadata(&a)
            .and_then(|m| m.modified())
            .expect("mtime");
        std::fs::write(&a, role_file("ns-a", "uno")).expect("write");
        std::fs::File::options()
            .write(true)
            .open(&a)
            .and_then(|f| f.set_modified(modified))
            .expect("set mtime");
        let (changed, _, f3) = load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        assert_eq!(parsed.unread(), 1, "only b.json is unchanged");
        assert_eq!(role_names(&changed), ["ns-a/uno", "ns-b/two"]);
        assert_ne!(f3, f2);

        // Replaced by a new file (a new inode, as a ConfigMap update or an editor's rename
        // makes), read even though it was written within the settling time.
        std::thread::sleep(std::time::Duration::from_millis(100));
        load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        let fresh = dir.path().join(".b.json.tmp");
        std::fs::write(&fresh, role_file("ns-b", "dos")).expect("write");
        std::fs::rename(&fresh, &b).expect("rename");
        let (renamed, _, _) = load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        assert_eq!(role_names(&renamed), ["ns-a/uno", "ns-b/dos"]);

        // Not trusting stamps (SIGHUP, the periodic re-read): every file is read.
        std::thread::sleep(std::time::Duration::from_millis(100));
        load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        assert_eq!(parsed.unread(), 2);
        parsed.trust_stamps(false);
        load_paths_with(&dirs, Some(&mut parsed)).expect("loads");
        assert_eq!(parsed.unread(), 0);
    }

    #[test]
    fn a_stamp_counts_only_when_both_times_lie_before_the_settling_time() {
        let read_at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        let stamp = |modified: i64, changed: i64| FileStamp {
            device: 1,
            inode: 2,
            size: 3,
            modified: (modified, 0),
            changed: (changed, 0),
        };
        assert!(stamp(996, 996).settled(read_at, SETTLED).is_some());
        assert!(stamp(996, 998).settled(read_at, SETTLED).is_none());
        assert!(stamp(998, 996).settled(read_at, SETTLED).is_none());
        assert!(
            stamp(997, 996).settled(read_at, SETTLED).is_none(),
            "exactly at the limit"
        );
        assert!(stamp(-5, 996).settled(read_at, SETTLED).is_none());
        assert!(
            stamp(996, 996)
                .settled(std::time::UNIX_EPOCH, SETTLED)
                .is_none()
        );
    }

    proptest::proptest! {
        // Inputs span several 64 KiB blocks; 32 cases keep the test under a second or two.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        #[test]
        fn content_hash_does_not_depend_on_how_the_bytes_arrive(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200_000),
            cuts in proptest::collection::vec(0usize..200_000, 0..6),
            flip in 0usize..200_000,
        ) {
            let whole = {
                let mut h = ContentHash::new();
                h.add(&bytes);
                h.finish()
            };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut pieces = ContentHash::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                pieces.add(&bytes[at..cut]);
                at = cut;
            }
            proptest::prop_assert_eq!(whole, pieces.finish());
            if !bytes.is_empty() {
                let mut changed = bytes.clone();
                changed[flip % bytes.len()] ^= 1;
                let mut h = ContentHash::new();
                h.add(&changed);
                proptest::prop_assert_ne!(whole, h.finish());
            }
        }
    }

    #[test]
    fn streaming_from_disk_reads_what_reading_whole_reads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("p.json");
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/azure/aks-builtin-roles.json"),
        )
        .expect("built-in roles");
        std::fs::write(&file, &text).expect("write");
        let read = |stream_above| {
            let Ok(FileRead::Done(hash, part)) =
                read_file(&file, "p.json", Format::Json, stream_above, None)
            else {
                panic!("readable");
            };
            let Part::Read(read) = part else {
                panic!("a file read without kept parses is not kept: {part:?}");
            };
            let (set, found) = *read;
            (format!("{:?}", set.role_definitions), found, hash)
        };
        let (streamed, whole) = (read(0), read(u64::MAX));
        assert!(streamed.0.contains("Azure Kubernetes Service RBAC Reader"));
        assert_eq!(streamed, whole);
    }
}
