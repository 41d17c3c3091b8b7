//! How latmove writes: every output whole or absent, never through a
//! planted link, never over an input, and no temporary file left behind.
//!
//! - A file is written to a temporary file with a random name created
//!   exclusively (`O_EXCL`) beside its target, synced, then renamed over
//!   it; a target that exists and is not a regular file (a device, a FIFO,
//!   a terminal behind `/dev/stdout`) is written directly instead.
//! - An output directory (`--out`, `--report`) is written as a set: the
//!   files go to a private staging directory inside it, and only when every
//!   one is written are they renamed into place, stale files of an earlier
//!   run removed; a lock on the directory keeps two runs from mixing their
//!   sets, and a marker file keeps the directory from being read back as
//!   flow input.
//! - On SIGINT or SIGTERM (or SIGHUP) the temporary files and staging
//!   directories are removed before the process exits with status 130; a
//!   signal during the renames waits for them to finish.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};

/// The file that marks a directory as latmove's output and holds its lock.
pub(crate) const MARKER: &str = ".latmove";

/// Temporary files and staging directories to remove on a signal.
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Renames in progress: a signal waits for them.
static COMMITTING: AtomicUsize = AtomicUsize::new(0);
/// A signal arrived.
static STOPPED: AtomicBool = AtomicBool::new(false);
/// The command stops by itself on a signal (`watch`): the handler only
/// records it.
static GRACEFUL: AtomicBool = AtomicBool::new(false);

/// Installs the SIGINT/SIGTERM/SIGHUP handler (once, at start).
pub(crate) fn install_signal_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        STOPPED.store(true, Ordering::SeqCst);
        if GRACEFUL.load(Ordering::SeqCst) || COMMITTING.load(Ordering::SeqCst) > 0 {
            return;
        }
        exit_on_signal();
    })
    .context("installing the signal handler")
}

/// Makes a signal only ask the command to stop (see [`stop_requested`]).
pub(crate) fn stop_gracefully() {
    GRACEFUL.store(true, Ordering::SeqCst);
}

/// Whether a signal asked the command to stop.
pub(crate) fn stop_requested() -> bool {
    STOPPED.load(Ordering::SeqCst)
}

/// Removes what is registered and exits with 130.
fn exit_on_signal() -> ! {
    let temps = TEMPS.lock().map(|t| t.clone()).unwrap_or_default();
    for t in temps {
        let _ = fs::remove_dir_all(&t).or_else(|_| fs::remove_file(&t));
    }
    eprintln!("latmove: stopped by a signal; no output was left half-written");
    std::process::exit(130);
}

/// Keeps `path` on the list to remove on a signal while the guard lives.
struct Registered(PathBuf);

impl Registered {
    fn new(path: &Path) -> Registered {
        if let Ok(mut t) = TEMPS.lock() {
            t.push(path.to_path_buf());
        }
        Registered(path.to_path_buf())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut t) = TEMPS.lock()
            && let Some(i) = t.iter().position(|p| *p == self.0)
        {
            t.swap_remove(i);
        }
    }
}

/// Creates a temporary file or directory with `create` and registers it
/// (at `path_of`) as one step for the signal handler: a signal between the
/// two would otherwise leave it behind unregistered. A signal meanwhile
/// exits once it is registered, removing it.
fn created<T, E>(
    create: impl FnOnce() -> Result<T, E>,
    path_of: impl FnOnce(&T) -> &Path,
) -> Result<(T, Registered), E> {
    let creating = Committing::start();
    let made = create()?;
    let registered = Registered::new(path_of(&made));
    drop(creating);
    Ok((made, registered))
}

/// Renames in progress; a signal that came meanwhile exits when the last
/// ends.
struct Committing;

impl Committing {
    fn start() -> Committing {
        COMMITTING.fetch_add(1, Ordering::SeqCst);
        Committing
    }
}

impl Drop for Committing {
    fn drop(&mut self) {
        if COMMITTING.fetch_sub(1, Ordering::SeqCst) == 1
            && STOPPED.load(Ordering::SeqCst)
            && !GRACEFUL.load(Ordering::SeqCst)
        {
            exit_on_signal();
        }
    }
}

/// Writes `bytes` to `path` whole (see the module's rules).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Writes `path` whole with `fill`, which streams into the writer it is
/// given (see the module's rules).
pub(crate) fn write_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut (dyn std::io::Write + Send)) -> Result<T>,
) -> Result<T> {
    let written = match fs::metadata(path) {
        // A device, FIFO or terminal: written as it is, never replaced.
        Ok(meta) if !meta.is_file() && !meta.is_dir() => (|| {
            let mut f = OpenOptions::new().write(true).open(path)?;
            let t = fill(&mut f)?;
            f.flush()?;
            Ok(t)
        })(),
        Ok(meta) if meta.is_dir() => bail!("writing {}: it is a directory", path.display()),
        _ => replace_file(path, fill),
    };
    written.with_context(|| format!("writing {}", path.display()))
}

/// A temporary file beside `path` (random name, created exclusively),
/// filled, synced and renamed over `path`.
fn replace_file<T>(
    path: &Path,
    fill: impl FnOnce(&mut (dyn std::io::Write + Send)) -> Result<T>,
) -> Result<T> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".partial");
    // Readable as any new file would be (the umask applies), not 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let (mut tmp, _guard) = created(|| builder.tempfile_in(dir), |t| t.path())?;
    let t = {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        let t = fill(&mut w)?;
        w.flush()?;
        t
    };
    tmp.as_file().sync_all()?;
    let _committing = Committing::start();
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(t)
}

/// An output directory being written as one set.
pub(crate) struct Staged {
    dir: PathBuf,
    staging: tempfile::TempDir,
    _registered: Registered,
    /// Held until the set is in place.
    _lock: File,
}

impl Staged {
    /// Creates `dir` if needed, takes its lock (refusing when another run
    /// holds it) and opens a private staging directory inside it. `what`
    /// names the directory's option in messages.
    pub(crate) fn begin(dir: &Path, what: &str) -> Result<Staged> {
        if let Ok(meta) = fs::metadata(dir)
            && !meta.is_dir()
        {
            bail!("{what} {}: exists and is not a directory", dir.display());
        }
        fs::create_dir_all(dir)
            .with_context(|| format!("creating {what} directory {}", dir.display()))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(MARKER))
            .with_context(|| format!("locking {what} directory {}", dir.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => bail!(
                "{what} {}: another latmove run is writing there; wait for it or choose another directory",
                dir.display()
            ),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", dir.display()));
            }
        }
        // Under the lock, a staging directory left here belongs to a run
        // that was killed outright (SIGKILL, power): it goes.
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(".latmove-staging.")
                {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let (staging, registered) = created(
            || {
                tempfile::Builder::new()
                    .prefix(".latmove-staging.")
                    .tempdir_in(dir)
            },
            |t| t.path(),
        )
        .with_context(|| format!("creating a staging directory in {}", dir.display()))?;
        Ok(Staged {
            dir: dir.to_path_buf(),
            staging,
            _registered: registered,
            _lock: lock,
        })
    }

    /// Where the set's files are written until [`Staged::commit`].
    pub(crate) fn path(&self) -> &Path {
        self.staging.path()
    }

    /// Moves every staged file into the directory and removes the files of
    /// an earlier run that `stale` recognises and this set does not have.
    pub(crate) fn commit(self, stale: impl Fn(&str) -> bool) -> Result<()> {
        let mut names: Vec<std::ffi::OsString> = fs::read_dir(self.staging.path())
            .with_context(|| format!("reading {}", self.staging.path().display()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        let _committing = Committing::start();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            if !names.contains(&name) && name.to_str().is_some_and(&stale) {
                let old = self.dir.join(&name);
                fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
            }
        }
        for name in &names {
            let (from, to) = (self.staging.path().join(name), self.dir.join(name));
            fs::rename(&from, &to).with_context(|| format!("writing {}", to.display()))?;
        }
        Ok(())
    }
}

/// Whether `a` and `b` are the same file (both exist).
#[cfg(unix)]
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Whether `a` and `b` are the same file (both exist).
#[cfg(not(unix))]
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Refuses, before any work, an output that would replace an input:
/// `outputs` are `(option, path)`; `inputs` are the input files.
pub(crate) fn refuse_outputs_over_inputs(
    outputs: &[(&str, PathBuf)],
    inputs: &[PathBuf],
) -> Result<()> {
    for (what, out) in outputs {
        if let Some(input) = inputs.iter().find(|i| same_file(out, i)) {
            bail!(
                "{what} {} is the input {}: latmove never writes over its input",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_set_replaces_the_old_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("a.csv"), "old").unwrap();
        fs::write(out.join("b.png"), "old chart").unwrap();
        fs::write(out.join("notes.txt"), "the user's").unwrap();
        let staged = Staged::begin(&out, "--out").unwrap();
        // A second run cannot write there meanwhile.
        assert!(Staged::begin(&out, "--out").is_err());
        write_file(&staged.path().join("a.csv"), b"new").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(staged.path().join("a.csv"))
                .unwrap()
                .permissions()
                .mode();
            assert_ne!(mode & 0o044, 0, "{mode:o}: only the owner can read it");
        }
        assert_eq!(fs::read(out.join("a.csv")).unwrap(), b"old");
        staged
            .commit(|n| n.ends_with(".png") || n.ends_with(".csv"))
            .unwrap();
        assert_eq!(fs::read(out.join("a.csv")).unwrap(), b"new");
        assert!(!out.join("b.png").exists(), "a stale chart stayed");
        assert!(
            out.join("notes.txt").exists(),
            "a file not ours was removed"
        );
        let left: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".latmove-staging"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // A killed run's staging directory goes when the next run starts.
        fs::create_dir(out.join(".latmove-staging.dead")).unwrap();
        let again = Staged::begin(&out, "--out");
        assert!(again.is_ok(), "the lock outlived the run");
        assert!(!out.join(".latmove-staging.dead").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_link_is_never_followed_and_devices_are_written_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        fs::write(&victim, "IMPORTANT").unwrap();
        let target = dir.path().join("out.csv");
        // Links at every name a predictable scheme could have used.
        for i in 0..50 {
            let _ = std::os::unix::fs::symlink(
                &victim,
                dir.path().join(format!(".out.csv.{i}.partial")),
            );
        }
        write_file(&target, b"data").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"IMPORTANT");
        assert_eq!(fs::read(&target).unwrap(), b"data");
        write_file(Path::new("/dev/null"), b"x").unwrap();
        assert!(!fs::metadata("/dev/null").unwrap().is_file());
    }
}
