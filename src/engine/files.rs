//! The `files` source and sink: directories as a tar archive stream.
//!
//! Backup writes a POSIX tar (regular files, directories, symlinks, hard
//! links as copies; modes, owners, mtimes) into a pipe that the pipeline
//! reads, with entries in sorted order so unchanged trees produce the same
//! bytes and dedup. Sockets, FIFOs and devices are skipped and listed in the
//! manifest. Restore refuses every entry that would land outside the
//! destination (absolute paths, `..`, paths through symlinks, hard links to
//! paths outside) and device nodes; FIFOs are skipped with a warning.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::error::{fail, ExitStatus, Failure};
use crate::repo::backup::{ArtifactStream, Source};

pub struct FilesSource {
    paths: Vec<PathBuf>,
    started: bool,
    skipped: Arc<Mutex<Vec<String>>>,
    counts: Arc<Mutex<(u64, u64)>>,
}

impl FilesSource {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        FilesSource {
            paths,
            started: false,
            skipped: Arc::default(),
            counts: Arc::default(),
        }
    }
}

/// The archive name of a path: absolute paths lose their leading `/`.
fn archive_name(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

struct Walker<W: io::Write> {
    builder: tar::Builder<W>,
    skipped: Arc<Mutex<Vec<String>>>,
    counts: Arc<Mutex<(u64, u64)>>,
}

impl<W: io::Write> Walker<W> {
    fn add(&mut self, path: &Path, name: &Path) -> Result<()> {
        let meta = fs::symlink_metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            if !name.as_os_str().is_empty() {
                self.builder
                    .append_path_with_name(path, name)
                    .with_context(|| format!("cannot archive {}", path.display()))?;
            }
            let mut entries: Vec<_> = fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .collect::<io::Result<Vec<_>>>()
                .with_context(|| format!("cannot list {}", path.display()))?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                self.add(&e.path(), &name.join(e.file_name()))?;
            }
        } else if ft.is_file() || ft.is_symlink() {
            self.builder
                .append_path_with_name(path, name)
                .with_context(|| format!("cannot archive {}", path.display()))?;
            let mut c = self.counts.lock().unwrap();
            c.0 += 1;
            c.1 += meta.len();
        } else {
            self.skipped
                .lock()
                .unwrap()
                .push(path.display().to_string());
        }
        Ok(())
    }
}

impl Source for FilesSource {
    fn kind(&self) -> &'static str {
        "files"
    }

    fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        if self.started {
            return Ok(None);
        }
        self.started = true;
        for p in &self.paths {
            if fs::symlink_metadata(p).is_err() {
                return fail(
                    ExitStatus::Failure,
                    format!("the path {} does not exist or cannot be read.", p.display()),
                    "Check the paths of the files source (and that this user may read them).",
                );
            }
        }
        let (reader, writer) = io::pipe()?;
        let paths: Vec<PathBuf> = self
            .paths
            .iter()
            .map(|p| fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect();
        let skipped = self.skipped.clone();
        let counts = self.counts.clone();
        let handle = std::thread::Builder::new()
            .name("vaultctl-tar".into())
            .spawn(move || -> Result<()> {
                let mut builder = tar::Builder::new(writer);
                builder.follow_symlinks(false);
                builder.mode(tar::HeaderMode::Complete);
                let mut w = Walker {
                    builder,
                    skipped,
                    counts,
                };
                for p in &paths {
                    w.add(p, &archive_name(p))?;
                }
                w.builder.into_inner()?;
                Ok(())
            })?;
        Ok(Some(ArtifactStream {
            name: "files.tar".into(),
            format: "tar".into(),
            reader: Box::new(reader),
            finish: Box::new(move || {
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("the archiving thread panicked"))?
            }),
        }))
    }

    fn metadata(&self) -> serde_json::Value {
        let c = self.counts.lock().unwrap();
        serde_json::json!({
            "paths": self.paths,
            "files": c.0,
            "file_bytes": c.1,
            "skipped_special_files": *self.skipped.lock().unwrap(),
        })
    }
}

/// Refuses a path that is absolute or climbs out with `..`.
fn safe_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// True when an existing ancestor of `rel` below `dest` is a symlink.
fn through_symlink(dest: &Path, rel: &Path) -> bool {
    let mut cur = dest.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(c);
        if let Ok(m) = fs::symlink_metadata(&cur) {
            if m.file_type().is_symlink() {
                return true;
            }
        }
    }
    false
}

/// Summary of a files restore.
#[derive(Debug, serde::Serialize, Default)]
pub struct Extracted {
    pub entries: u64,
    pub bytes: u64,
    /// Entries restored without the set-user-ID/set-group-ID bits they had.
    pub set_id_dropped: u64,
}

/// Mode bits a restore never sets (set-user-ID, set-group-ID).
const SET_ID_BITS: u32 = 0o6000;

/// Extracts a tar stream into `dest` (which must be empty unless `force`).
pub fn restore_tar(reader: impl Read, dest: &Path, force: bool) -> Result<Extracted> {
    fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    if !force && fs::read_dir(dest)?.next().is_some() {
        return fail(
            ExitStatus::Usage,
            format!("the destination {} is not empty.", dest.display()),
            "Restore into an empty directory, or pass --force to write into this one (existing files are replaced).",
        );
    }
    let dest = fs::canonicalize(dest)?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(rustix::process::geteuid().is_root());
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    // Set-user-ID and set-group-ID bits are never restored: with the
    // archive's owner (root, when restoring as root) they would let a
    // compromised backup host plant a privilege-raising program on the
    // restore host (DESIGN §8). Each one dropped is named.
    archive.set_mask(SET_ID_BITS);
    let mut dirs: Vec<(PathBuf, u64)> = Vec::new();
    let mut summary = Extracted::default();
    for entry in archive.entries()? {
        let mut entry = entry.context("the archive stream is unreadable")?;
        let raw = entry.path()?.into_owned();
        let rel = match safe_relative(&raw) {
            Some(r) if !r.as_os_str().is_empty() => r,
            // `./` (as `tar -C DIR -cf - .` writes): the destination itself.
            Some(_) if entry.header().entry_type().is_dir() => continue,
            _ => {
                return Err(Failure::new(ExitStatus::Failure, format!("the archive entry \"{}\" would land outside {}; refusing it.", raw.display(), dest.display()))
                    .with_remedy("The backup's archive is malicious or damaged; nothing outside the destination was written.")
                    .into())
            }
        };
        if through_symlink(&dest, &rel) {
            return Err(Failure::new(ExitStatus::Failure, format!("the archive entry \"{}\" would be written through a symlink; refusing it.", raw.display()))
                .with_remedy("The backup's archive is malicious or damaged; nothing outside the destination was written.")
                .into());
        }
        if let Some(target) = entry.link_name()? {
            let escapes = match safe_relative(&target) {
                None => true,
                // Linking `l/file` where `l` is a symlink links whatever it
                // points at, outside too.
                Some(t) => t.as_os_str().is_empty() || through_symlink(&dest, &t),
            };
            if entry.header().entry_type().is_hard_link() && escapes {
                return Err(Failure::new(
                    ExitStatus::Failure,
                    format!(
                        "the hard link \"{}\" points outside the destination or through a symlink; refusing it.",
                        raw.display()
                    ),
                )
                .with_remedy("The backup's archive is malicious or damaged.")
                .into());
            }
        }
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() {
            // A device node from a backup would hand whoever reads the
            // restored tree the device (a disk, /dev/mem) with the
            // archive's mode and owner.
            return Err(Failure::new(
                ExitStatus::Failure,
                format!(
                    "the archive entry \"{}\" is a device node; refusing it.",
                    raw.display()
                ),
            )
            .with_remedy("vaultctl never restores device nodes, and its files sources never archive them. If the archive is trusted and the nodes are needed, extract it by hand: `vaultctl restore ID --stdout | tar -x`.")
            .into());
        }
        if kind.is_fifo() {
            // Harmless but never data: skipped, as backups skip them.
            tracing::warn!(
                "skipped the FIFO \"{}\" in the archive (FIFOs are not restored)",
                raw.display()
            );
            continue;
        }
        // Replacing a directory with a file or symlink (or the reverse)
        // is how an archive redirects the entries that follow it.
        if let Ok(existing) = fs::symlink_metadata(dest.join(&rel)) {
            if existing.is_dir() != kind.is_dir() {
                return Err(Failure::new(
                    ExitStatus::Failure,
                    format!(
                        "the archive entry \"{}\" would replace {} of the same name; refusing it.",
                        raw.display(),
                        if existing.is_dir() {
                            "a directory"
                        } else {
                            "a file or symlink"
                        }
                    ),
                )
                .with_remedy("The backup's archive is malicious or damaged (or, with --force, the destination holds another kind of file there: restore into an empty directory); nothing outside the destination was written.")
                .into());
            }
        }
        if kind.is_dir() {
            dirs.push((dest.join(&rel), entry.header().mtime().unwrap_or(0)));
        }
        if entry.header().mode().unwrap_or(0) & SET_ID_BITS != 0 && !kind.is_symlink() {
            summary.set_id_dropped += 1;
            tracing::warn!(
                "restored \"{}\" without its set-user-ID/set-group-ID bits (vaultctl never restores them; set them again with chmod if you trust this backup)",
                raw.display()
            );
        }
        summary.entries += 1;
        summary.bytes += entry.header().size().unwrap_or(0);
        if !entry
            .unpack_in(&dest)
            .with_context(|| format!("cannot restore {}", rel.display()))?
        {
            return fail(
                ExitStatus::Failure,
                format!(
                    "the archive entry \"{}\" would land outside {}; refusing it.",
                    raw.display(),
                    dest.display()
                ),
                "The backup's archive is malicious or damaged.",
            );
        }
    }
    // Read to the end: the stream's length and hash are checked there, and
    // a mismatch must fail the restore.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).context("the restored stream failed its final check")?;
    // Children changed the directories' mtimes: set them last, deepest first.
    for (dir, mtime) in dirs.iter().rev() {
        if let Ok(f) = fs::File::open(dir) {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(*mtime);
            let _ = f.set_modified(t);
        }
    }
    Ok(summary)
}
