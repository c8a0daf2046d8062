//! Storage targets: `object_store` backends built from the config, with
//! retries, timeouts and a blocking facade for the pipeline's threads.
//!
//! S3-compatible stores (AWS, R2, B2, test servers) go through
//! `AmazonS3Builder` with path-style addressing when an endpoint is set;
//! transient errors (5xx, timeouts, resets) are retried by object_store with
//! exponential backoff and jitter. Local targets are written by vaultctl
//! itself ([`write_local`]: temp file, fsync, rename or link, directory
//! fsyncs), because a backup that a power cut can erase is not a backup.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, PutPayload, RetryConfig,
};

use crate::error::{ExitStatus, Failure};

/// What [`Store::open`] needs of a target: storage's own description, which
/// the configuration converts its targets into (`config::Target::store_spec`,
/// secrets already read), so storage does not depend on the config.
pub struct StoreSpec {
    pub name: String,
    pub location: StoreLocation,
    pub max_retries: usize,
    pub retry_timeout: Duration,
    pub request_timeout: Duration,
}

/// Where a [`StoreSpec`]'s objects live.
pub enum StoreLocation {
    Local {
        path: PathBuf,
    },
    S3 {
        place: S3Place,
        /// Send `If-None-Match: *` on creating writes (B2's are unreliable).
        conditional_writes: bool,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        session_token: Option<String>,
        /// The `AWS_*` variables of the environment (name, value), read by
        /// the config: defaults under everything above, applied as
        /// `AmazonS3Builder::from_env` would; storage never reads the
        /// environment itself.
        aws_environment: Vec<(String, String)>,
    },
}

/// Where an S3 target's objects are: the part of its configuration that
/// both the validated config and storage use (credentials differ: the
/// config holds where they come from, storage the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Place {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
    pub allow_http: bool,
}

/// Fault injection for the crash suite (library tests only; never shipped).
#[cfg(test)]
pub mod fault;

/// The process-wide async runtime that storage I/O runs on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vaultctl-io")
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime")
    })
}

/// How a local write treats an existing object of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalPut {
    /// Replace it (rename over it).
    Overwrite,
    /// Keep it (a hard link never replaces a file) and report `false`.
    IfAbsent,
}

/// One durable step of a local write, reported to an observer so tests can
/// check the order without tracing system calls.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A missing directory was created.
    CreatedDir(PathBuf),
    /// The temporary file holds the data and is fsynced.
    SyncedTemp(PathBuf),
    /// The temporary file was renamed (or linked) to the final name.
    Published(PathBuf),
    /// The final name already existed (`IfAbsent`); that file was fsynced.
    SyncedExisting(PathBuf),
    /// A directory was fsynced.
    SyncedDir(PathBuf),
}

/// Temporary names are `<name>#<digits>`: object_store's own staging
/// convention, which its listings skip, so a crash leaves nothing a listing
/// would take for an object.
static TMP_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Creates `dir` and every missing ancestor; returns those that were
/// missing, outermost first (another process may have created some of them
/// meanwhile: their entries are fsynced all the same).
fn create_dirs(dir: &std::path::Path, step: &mut dyn FnMut(Step)) -> std::io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    missing.reverse();
    for d in &missing {
        match std::fs::create_dir(d) {
            Ok(()) => step(Step::CreatedDir(d.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(missing)
}

fn sync_dir(dir: &std::path::Path, step: &mut dyn FnMut(Step)) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    step(Step::SyncedDir(dir.to_path_buf()));
    Ok(())
}

/// Makes the entries of `new_dirs` (outermost first) durable: each one's
/// parent is fsynced, deepest first, up to the first directory that existed.
fn sync_new_dirs(new_dirs: &[PathBuf], step: &mut dyn FnMut(Step)) -> std::io::Result<()> {
    for d in new_dirs.iter().rev() {
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent, step)?;
        }
    }
    Ok(())
}

/// Writes a new local file (never replacing one: `Ok(false)` when `path`
/// exists) by the sequence of [`write_local`], created with permissions
/// `perm` (less the umask): key files, which a power cut must neither lose
/// nor leave empty.
pub fn write_new_file_durably(
    path: &std::path::Path,
    data: &[u8],
    perm: u32,
) -> std::io::Result<bool> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other(format!("{} is not a file name", path.display())))?;
    write_local(dir, name, data, LocalPut::IfAbsent, perm, &mut |_| {})
}

/// `create_dir_all` whose new directories survive a power cut.
fn create_dir_all_durable(dir: &std::path::Path) -> std::io::Result<()> {
    let new_dirs = create_dirs(dir, &mut |_| {})?;
    sync_new_dirs(&new_dirs, &mut |_| {})
}

/// Writes `root/name` durably, in this order: a temporary file in the
/// target directory (creating missing directories), written and fsynced;
/// renamed to the name (`Overwrite`) or hard-linked to it (`IfAbsent`,
/// which never replaces a file); the directory fsynced; then the parent of
/// every directory that was created, deepest first, up to one that
/// existed. A power cut therefore leaves either no object or the whole
/// object under its name, never an empty or partial one. With `IfAbsent`
/// and an existing object, that object and its directory are fsynced before
/// `Ok(false)` is returned: a retried `wal push` whose first attempt was
/// killed after the link reports success only for a durable file. Plain
/// blocking calls: this is the archive_command's hot path.
fn write_local(
    root: &std::path::Path,
    name: &str,
    data: &[u8],
    mode: LocalPut,
    perm: u32,
    step: &mut dyn FnMut(Step),
) -> std::io::Result<bool> {
    use std::io::Write;
    write_local_with(root, name, &mut |f| f.write_all(data), mode, perm, step)
}

/// [`write_local`] of what `write` writes into the temporary file (a
/// [`Payload`] streamed from its file).
fn write_local_with(
    root: &std::path::Path,
    name: &str,
    write: &mut dyn FnMut(&mut std::fs::File) -> std::io::Result<()>,
    mode: LocalPut,
    perm: u32,
    step: &mut dyn FnMut(Step),
) -> std::io::Result<bool> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = root.join(name);
    let dir = file.parent().unwrap_or(root).to_path_buf();
    let file_name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object")
        .to_string();
    let new_dirs = create_dirs(&dir, step)?;
    let (tmp, mut f) = loop {
        let seq = TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!("{file_name}#{}{seq:06}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(perm)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        write(&mut f)?;
        f.sync_all()?;
        drop(f);
        step(Step::SyncedTemp(tmp.clone()));
        let written = match mode {
            LocalPut::Overwrite => {
                std::fs::rename(&tmp, &file)?;
                step(Step::Published(file.clone()));
                true
            }
            LocalPut::IfAbsent => match std::fs::hard_link(&tmp, &file) {
                Ok(()) => {
                    step(Step::Published(file.clone()));
                    true
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Written by an earlier attempt that may have been
                    // killed before its fsyncs: make it durable now.
                    std::fs::File::open(&file)?.sync_all()?;
                    step(Step::SyncedExisting(file.clone()));
                    false
                }
                Err(e) => return Err(e),
            },
        };
        if mode == LocalPut::IfAbsent {
            let _ = std::fs::remove_file(&tmp);
        }
        sync_dir(&dir, step)?;
        sync_new_dirs(&new_dirs, step)?;
        Ok(written)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// An object to write: its bytes, or (a large manifest) a head in memory
/// and the rest in an unnamed temporary file, streamed from there so the
/// object is never whole in memory.
#[derive(Clone)]
pub enum Payload {
    Bytes(Bytes),
    Spooled {
        head: Bytes,
        body: Arc<std::fs::File>,
        body_len: u64,
    },
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Payload {
        Payload::Bytes(b)
    }
}

impl Payload {
    /// The object's size.
    pub fn len(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::Spooled { head, body_len, .. } => head.len() as u64 + body_len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes `at..at + n` of the object (`n` at most what is left).
    fn range(&self, at: u64, n: usize) -> std::io::Result<Bytes> {
        use std::os::unix::fs::FileExt;
        let (head, body) = match self {
            Payload::Bytes(b) => return Ok(b.slice(at as usize..at as usize + n)),
            Payload::Spooled { head, body, .. } => (head, body),
        };
        let mut out = Vec::with_capacity(n);
        let end = at + n as u64;
        let head_len = head.len() as u64;
        if at < head_len {
            out.extend_from_slice(&head[at as usize..end.min(head_len) as usize]);
        }
        let from = at.max(head_len) - head_len;
        let mut buf = vec![0u8; n - out.len()];
        body.read_exact_at(&mut buf, from)?;
        out.extend_from_slice(&buf);
        Ok(Bytes::from(out))
    }

    /// Writes the object to `f`, [`PART_BYTES`] at a time.
    fn write_to(&self, f: &mut std::fs::File) -> std::io::Result<()> {
        use std::io::Write;
        let mut at = 0;
        while at < self.len() {
            let n = (self.len() - at).min(PART_BYTES as u64) as usize;
            f.write_all(&self.range(at, n)?)?;
            at += n as u64;
        }
        Ok(())
    }
}

/// A [`Payload`] larger than this goes to an S3 target as a multipart
/// upload of parts of this size (invisible until completed; at least 5 MiB
/// but the last), one part in memory at a time.
pub const PART_BYTES: usize = 8 << 20;

/// One storage target holding (or about to hold) a complete repository.
#[derive(Clone)]
pub struct Store {
    pub name: String,
    inner: Arc<dyn ObjectStore>,
    prefix: String,
    /// For local targets: the directory, so puts can be fsynced.
    local_root: Option<PathBuf>,
    /// Where the target is, for messages (no credentials).
    pub display: String,
    /// Multipart uploads' part size ([`PART_BYTES`]; smaller in tests).
    part_bytes: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.name)
    }
}

impl Store {
    /// Builds the backend. `create` makes a missing local directory.
    pub fn open(target: &StoreSpec, create: bool) -> Result<Store> {
        match &target.location {
            StoreLocation::Local { path } => {
                if !path.exists() {
                    if create {
                        create_dir_all_durable(path).map_err(|e| {
                            Failure::new(
                                ExitStatus::Failure,
                                format!(
                                    "cannot create the directory {} for target '{}': {e}.",
                                    path.display(),
                                    target.name
                                ),
                            )
                            .with_remedy("Check the path and permissions in the config.")
                        })?;
                    } else {
                        return Err(Failure::new(
                            ExitStatus::RepoMissing,
                            format!("target '{}' ({}) does not exist.", target.name, path.display()),
                        )
                        .with_remedy("Run `vaultctl init` to create the repository, or fix the target's url.")
                        .into());
                    }
                }
                let fs = object_store::local::LocalFileSystem::new_with_prefix(path)?;
                Ok(Store {
                    name: target.name.clone(),
                    inner: Arc::new(fs),
                    prefix: String::new(),
                    local_root: Some(path.clone()),
                    display: format!("file://{}", path.display()),
                    part_bytes: PART_BYTES,
                })
            }
            StoreLocation::S3 {
                place:
                    S3Place {
                        bucket,
                        prefix,
                        endpoint,
                        region,
                        path_style,
                        allow_http,
                    },
                conditional_writes,
                access_key_id,
                secret_access_key,
                session_token,
                aws_environment,
            } => {
                let mut b = object_store::aws::AmazonS3Builder::new();
                for (key, value) in aws_environment {
                    if let Ok(key) = key.to_ascii_lowercase().parse() {
                        b = b.with_config(key, value);
                    }
                }
                let mut b = b
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_virtual_hosted_style_request(!path_style)
                    .with_allow_http(*allow_http)
                    .with_retry(RetryConfig {
                        backoff: BackoffConfig {
                            init_backoff: Duration::from_millis(200),
                            max_backoff: Duration::from_secs(15),
                            base: 2.0,
                        },
                        max_retries: target.max_retries,
                        retry_timeout: target.retry_timeout,
                    })
                    .with_client_options(
                        ClientOptions::new()
                            .with_timeout(target.request_timeout)
                            .with_connect_timeout(Duration::from_secs(10))
                            .with_allow_http(*allow_http)
                            // object_store's address shuffling resolves names
                            // with getaddrinfo (glibc NSS, which a static
                            // binary cannot load); without it reqwest uses its
                            // hickory resolver (see Cargo.toml).
                            .with_config(ClientConfigKey::RandomizeAddresses, "false"),
                    );
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e);
                }
                if !conditional_writes {
                    b = b.with_conditional_put(object_store::aws::S3ConditionalPut::Disabled);
                }
                if let Some(s) = access_key_id {
                    b = b.with_access_key_id(s);
                }
                if let Some(s) = secret_access_key {
                    b = b.with_secret_access_key(s);
                }
                if let Some(t) = session_token {
                    b = b.with_token(t);
                }
                let s3 = b.build().map_err(|e| {
                    Failure::new(
                        ExitStatus::Usage,
                        format!(
                            "target '{}' is misconfigured: {}.",
                            target.name,
                            crate::redact::text(&e.to_string())
                        ),
                    )
                    .with_remedy("Check bucket, endpoint, region and credentials in the config.")
                })?;
                Ok(Store {
                    name: target.name.clone(),
                    inner: Arc::new(s3),
                    prefix: prefix.clone(),
                    local_root: None,
                    display: format!(
                        "s3://{bucket}/{prefix}{}",
                        endpoint
                            .as_ref()
                            .map(|e| format!(" at {}", crate::redact::url(e)))
                            .unwrap_or_default()
                    ),
                    part_bytes: PART_BYTES,
                })
            }
        }
    }

    /// A target over any `object_store` backend (an in-memory store, a
    /// fault-injecting wrapper in tests, another cloud's client): objects
    /// live under `prefix` (empty: at the root). Its errors are reported
    /// like a remote target's (exit 75 unless permissions), and it gets no
    /// retries beyond what the backend does itself. Local directories go
    /// through [`Store::open`], which writes them durably.
    pub fn from_object_store(
        name: &str,
        inner: Arc<dyn ObjectStore>,
        prefix: &str,
        display: &str,
    ) -> Store {
        Store {
            name: name.to_string(),
            inner,
            prefix: prefix.trim_matches('/').to_string(),
            local_root: None,
            display: display.to_string(),
            part_bytes: PART_BYTES,
        }
    }

    /// The same target with multipart parts of `bytes` (tests: a large
    /// payload without megabytes of data).
    #[cfg(test)]
    pub fn with_part_bytes(mut self, bytes: usize) -> Store {
        self.part_bytes = bytes;
        self
    }

    /// A local directory (parallel writes gain nothing there).
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    fn path(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    fn storage_error(&self, op: &str, name: &str, e: object_store::Error) -> anyhow::Error {
        let (kind, remedy) = match &e {
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => (
                ExitStatus::Failure,
                "Check the target's credentials and bucket permissions.",
            ),
            _ if self.local_root.is_some() => (ExitStatus::Failure, "Check the disk and the directory's permissions."),
            _ => (
                ExitStatus::Temporary,
                "The target may be down or unreachable; vaultctl retried with backoff. Try again later (exit 75 means a retry may succeed).",
            ),
        };
        Failure::new(
            kind,
            format!(
                "target '{}': {op} {name} failed: {}.",
                self.name,
                crate::redact::text(&e.to_string())
            ),
        )
        .with_remedy(remedy)
        .into()
    }

    pub async fn put_async(&self, name: &str, data: Bytes) -> Result<()> {
        if self.local_root.is_some() {
            self.put_local(name, data, LocalPut::Overwrite).await?;
            return Ok(());
        }
        self.inner
            .put(&self.path(name), PutPayload::from_bytes(data))
            .await
            .map_err(|e| self.storage_error("writing", name, e))?;
        Ok(())
    }

    /// A local write ([`write_local`]) on the blocking pool.
    async fn put_local(&self, name: &str, data: Bytes, mode: LocalPut) -> Result<bool> {
        let root = self.local_root.clone().expect("a local target");
        let object = name.to_string();
        let r = tokio::task::spawn_blocking(move || {
            write_local(&root, &object, &data, mode, 0o666, &mut |_| {})
        })
        .await?;
        r.map_err(|e| self.local_error("writing", name, e))
    }

    fn local_error(&self, op: &str, name: &str, e: std::io::Error) -> anyhow::Error {
        self.storage_error(
            op,
            name,
            object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            },
        )
    }

    /// After deleting local objects: fsync their directories, so a power
    /// cut cannot bring back a deleted manifest after the packs it names
    /// were deleted too.
    async fn sync_local_dirs(&self, names: &[String]) -> Result<()> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        let dirs: BTreeSet<PathBuf> = names
            .iter()
            .filter_map(|n| root.join(n).parent().map(|p| p.to_path_buf()))
            .collect();
        let r = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            for d in dirs {
                match std::fs::File::open(&d) {
                    Ok(f) => f.sync_all()?,
                    // The directory went too (nothing left to make durable).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
        .await?;
        r.map_err(|e| self.local_error("syncing the directory of", &names[0], e))
    }

    pub fn put(&self, name: &str, data: Bytes) -> Result<()> {
        runtime().block_on(self.put_async(name, data))
    }

    /// Writes `name` from a [`Payload`], all or nothing: a local object
    /// through a temporary file renamed into place ([`write_local`]); on S3,
    /// an object larger than a part as a multipart upload, which stays
    /// invisible until completed and is aborted when a part fails.
    pub async fn put_payload_async(&self, name: &str, data: Payload) -> Result<()> {
        let data = match data {
            Payload::Bytes(b) => return self.put_async(name, b).await,
            spooled => spooled,
        };
        if let Some(root) = self.local_root.clone() {
            let object = name.to_string();
            let r = tokio::task::spawn_blocking(move || {
                write_local_with(
                    &root,
                    &object,
                    &mut |f| data.write_to(f),
                    LocalPut::Overwrite,
                    0o666,
                    &mut |_| {},
                )
            })
            .await?;
            r.map_err(|e| self.local_error("writing", name, e))?;
            return Ok(());
        }
        let len = data.len();
        let read = |at: u64, n: usize| {
            data.range(at, n)
                .map_err(|e| anyhow::anyhow!("reading the spooled {name} back failed: {e}"))
        };
        if len <= self.part_bytes as u64 {
            return self.put_async(name, read(0, len as usize)?).await;
        }
        let path = self.path(name);
        let mut upload = self
            .inner
            .put_multipart(&path)
            .await
            .map_err(|e| self.storage_error("writing", name, e))?;
        let mut at = 0u64;
        let mut failed = None;
        while at < len {
            let n = (len - at).min(self.part_bytes as u64) as usize;
            let part = match read(at, n) {
                Ok(p) => p,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            if let Err(e) = upload.put_part(PutPayload::from_bytes(part)).await {
                failed = Some(self.storage_error("writing", name, e));
                break;
            }
            at += n as u64;
        }
        if let Some(e) = failed {
            // Nothing is visible before `complete`; the parts go too.
            if let Err(a) = upload.abort().await {
                tracing::debug!("aborting the upload of {name} failed: {a}");
            }
            return Err(e);
        }
        upload
            .complete()
            .await
            .map_err(|e| self.storage_error("writing", name, e))?;
        Ok(())
    }

    pub async fn get_async(&self, name: &str) -> Result<Option<Bytes>> {
        match self.inner.get(&self.path(name)).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| self.storage_error("reading", name, e))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.storage_error("reading", name, e)),
        }
    }

    /// Reads an object; `None` when it does not exist.
    pub fn get(&self, name: &str) -> Result<Option<Bytes>> {
        runtime().block_on(self.get_async(name))
    }

    /// Lists objects under a directory: (name relative to the repository, size).
    pub fn list(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        Ok(self
            .list_detailed(dir)?
            .into_iter()
            .map(|o| (o.name, o.size))
            .collect())
    }

    /// Writes an object only when no object of that name exists: `Ok(true)`
    /// when written (and, locally, fsynced), `Ok(false)` when one was there.
    /// Local targets make this atomic (a hard link refuses to clobber); on
    /// S3 it is a HEAD then a PUT, which is enough for writers that are
    /// serialized per name (PostgreSQL archives one segment at a time).
    pub async fn put_if_absent_async(&self, name: &str, data: Bytes) -> Result<bool> {
        if self.local_root.is_some() {
            return self.put_local(name, data, LocalPut::IfAbsent).await;
        }
        match self.inner.head(&self.path(name)).await {
            Ok(_) => return Ok(false),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.storage_error("checking", name, e)),
        }
        self.put_async(name, data).await?;
        Ok(true)
    }

    /// Writes an object with a conditional create (S3 `If-None-Match: *`;
    /// locally a hard link): what the target did with it. `doctor` probes
    /// with it whether a provider honours conditional writes.
    pub fn put_create(&self, name: &str, data: Bytes) -> Result<CreateOutcome> {
        runtime().block_on(async {
            if self.local_root.is_some() {
                return Ok(if self.put_local(name, data, LocalPut::IfAbsent).await? {
                    CreateOutcome::Created
                } else {
                    CreateOutcome::Exists
                });
            }
            let opts = object_store::PutOptions {
                mode: object_store::PutMode::Create,
                ..Default::default()
            };
            match self
                .inner
                .put_opts(&self.path(name), PutPayload::from_bytes(data), opts)
                .await
            {
                Ok(_) => Ok(CreateOutcome::Created),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => Ok(CreateOutcome::Exists),
                Err(e @ object_store::Error::NotImplemented)
                | Err(e @ object_store::Error::NotSupported { .. }) => Ok(
                    CreateOutcome::Unsupported(crate::redact::text(&e.to_string())),
                ),
                Err(e) => Err(self.storage_error("writing", name, e)),
            }
        })
    }

    /// An object's modification time by the storage's clock (unix
    /// milliseconds); `None` when it does not exist.
    pub fn modified_ms(&self, name: &str) -> Result<Option<i64>> {
        match runtime().block_on(self.inner.head(&self.path(name))) {
            Ok(m) => Ok(Some(m.last_modified.timestamp_millis())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.storage_error("checking", name, e)),
        }
    }

    /// The first `len` bytes of an object (fewer when it is shorter);
    /// `None` when it does not exist.
    pub async fn get_head_async(&self, name: &str, len: usize) -> Result<Option<Bytes>> {
        Ok(self
            .get_range_async(name, 0..len as u64)
            .await?
            .map(|(bytes, _)| bytes))
    }

    /// Bytes `range` of an object (fewer when it ends inside the range)
    /// and the object's whole length; `None` when it does not exist.
    pub async fn get_range_async(
        &self,
        name: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<(Bytes, u64)>> {
        let opts = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        match self.inner.get_opts(&self.path(name), opts).await {
            Ok(r) => {
                let size = r.meta.size;
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| self.storage_error("reading", name, e))?;
                Ok(Some((bytes, size)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.storage_error("reading", name, e)),
        }
    }

    /// [`Store::get_range_async`] from synchronous code.
    pub fn get_range(
        &self,
        name: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<(Bytes, u64)>> {
        runtime().block_on(self.get_range_async(name, range))
    }

    /// Lists objects under a directory with their modification times (the
    /// storage server's clock, so hosts with skewed clocks agree on ages).
    pub fn list_detailed(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let prefix = self.path(dir);
        runtime().block_on(async {
            let metas: Vec<_> = self
                .inner
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|e| self.storage_error("listing", dir, e))?;
            Ok(metas.into_iter().filter_map(|m| self.info(m)).collect())
        })
    }

    /// One level of a directory: its subdirectories (names relative to the
    /// repository) and the objects directly in it. One request per 1000
    /// entries on S3, where a full listing of a large tree costs many.
    pub fn list_level(&self, dir: &str) -> Result<(Vec<String>, Vec<ObjectInfo>)> {
        let r = runtime()
            .block_on(self.inner.list_with_delimiter(Some(&self.path(dir))))
            .map_err(|e| self.storage_error("listing", dir, e))?;
        let dirs = r
            .common_prefixes
            .iter()
            .filter_map(|p| self.relative(p.as_ref()).map(str::to_string))
            .collect();
        let objects = r.objects.into_iter().filter_map(|m| self.info(m)).collect();
        Ok((dirs, objects))
    }

    /// A store path relative to the repository (`None`: outside it).
    fn relative<'a>(&self, full: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            Some(full)
        } else {
            full.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
        }
    }

    fn info(&self, m: object_store::ObjectMeta) -> Option<ObjectInfo> {
        Some(ObjectInfo {
            name: self.relative(m.location.as_ref())?.to_string(),
            size: m.size,
            modified_ms: m.last_modified.timestamp_millis(),
        })
    }

    /// Deletes an object (locally: and fsyncs its directory).
    pub async fn delete_async(&self, name: &str) -> Result<()> {
        self.delete_unsynced(name).await?;
        self.sync_local_dirs(&[name.to_string()]).await
    }

    async fn delete_raw(&self, name: &str) -> Result<(), object_store::Error> {
        match self.inner.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete_unsynced(&self, name: &str) -> Result<()> {
        self.delete_raw(name)
            .await
            .map_err(|e| self.storage_error("deleting", name, e))
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        runtime().block_on(self.delete_async(name))
    }

    /// Deletes many objects, a few at a time (S3 round trips dominate).
    pub fn delete_many(&self, names: &[String]) -> Result<()> {
        runtime().block_on(async {
            for chunk in names.chunks(16) {
                for r in
                    futures::future::join_all(chunk.iter().map(|n| self.delete_unsynced(n))).await
                {
                    r?;
                }
            }
            if !names.is_empty() {
                self.sync_local_dirs(names).await?;
            }
            Ok(())
        })
    }

    /// [`Store::delete_many`], except that a delete the target refuses
    /// (permission denied: Object Lock retention, or credentials that may
    /// write but not delete) is no error: the refused names are returned,
    /// and the rest is deleted. Any other error fails as before.
    pub fn delete_many_or_refused(&self, names: &[String]) -> Result<Vec<String>> {
        runtime().block_on(async {
            let mut refused = Vec::new();
            for chunk in names.chunks(16) {
                let results =
                    futures::future::join_all(chunk.iter().map(|n| self.delete_raw(n))).await;
                for (n, r) in chunk.iter().zip(results) {
                    match r {
                        Ok(()) => {}
                        Err(object_store::Error::PermissionDenied { .. }) => {
                            refused.push(n.clone())
                        }
                        Err(e) => return Err(self.storage_error("deleting", n, e)),
                    }
                }
            }
            if !names.is_empty() {
                self.sync_local_dirs(names).await?;
            }
            Ok(refused)
        })
    }

    /// [`Store::delete`], except that a refused delete (permission denied:
    /// Object Lock retention, append-only credentials) is no error: `false`
    /// says the object stays.
    pub fn delete_unless_refused(&self, name: &str) -> Result<bool> {
        let refused = self.delete_many_or_refused(&[name.to_string()])?;
        Ok(refused.is_empty())
    }

    /// Reads many objects, a few at a time; `None` for those that are gone.
    pub fn get_many(&self, names: &[String]) -> Result<Vec<Option<Bytes>>> {
        runtime().block_on(async {
            let mut out = Vec::with_capacity(names.len());
            for chunk in names.chunks(16) {
                for r in futures::future::join_all(chunk.iter().map(|n| self.get_async(n))).await {
                    out.push(r?);
                }
            }
            Ok(out)
        })
    }
}

/// What a conditional create did ([`Store::put_create`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The object was written.
    Created,
    /// An object of that name existed; nothing was written.
    Exists,
    /// The backend refused the condition itself (the error's text).
    Unsupported(String),
}

/// A listed object.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    /// Name relative to the repository.
    pub name: String,
    pub size: u64,
    /// Last modification, unix milliseconds, by the storage's clock.
    pub modified_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Runs a local write, checking at every step that the final name holds
    /// either nothing, the old bytes or all of the new ones (never an empty
    /// or partial file), and returns the steps.
    fn observed(
        root: &Path,
        name: &str,
        data: &[u8],
        old: Option<&[u8]>,
        mode: LocalPut,
    ) -> (bool, Vec<Step>) {
        let file = root.join(name);
        let mut steps = Vec::new();
        let written = write_local(root, name, data, mode, 0o666, &mut |s| {
            match std::fs::read(&file) {
                Ok(b) => assert!(
                    b == data || Some(b.as_slice()) == old,
                    "at {s:?} the object holds {} bytes",
                    b.len()
                ),
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
            }
            if let Step::SyncedTemp(t) = &s {
                assert_eq!(std::fs::read(t).unwrap(), data, "the temp file is complete");
                assert_eq!(
                    t.parent(),
                    file.parent(),
                    "the temp file is beside the object"
                );
            }
            steps.push(s);
        })
        .unwrap();
        (written, steps)
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains('#'))
            .collect()
    }

    #[test]
    fn a_new_object_is_synced_then_published_then_its_new_directories_synced() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let (written, steps) =
            observed(root, "wal/src/0001/obj", b"data", None, LocalPut::Overwrite);
        assert!(written);
        let d = |p: &str| root.join(p);
        assert_eq!(steps.len(), 9, "{steps:#?}");
        assert_eq!(
            steps[..3],
            [
                Step::CreatedDir(d("wal")),
                Step::CreatedDir(d("wal/src")),
                Step::CreatedDir(d("wal/src/0001")),
            ]
        );
        assert!(matches!(&steps[3], Step::SyncedTemp(_)));
        assert_eq!(
            steps[4..],
            [
                Step::Published(d("wal/src/0001/obj")),
                Step::SyncedDir(d("wal/src/0001")),
                Step::SyncedDir(d("wal/src")),
                Step::SyncedDir(d("wal")),
                Step::SyncedDir(root.to_path_buf()),
            ]
        );
        assert_eq!(std::fs::read(d("wal/src/0001/obj")).unwrap(), b"data");
        assert!(leftovers(&d("wal/src/0001")).is_empty());
        // The same again: the directories exist, only the object's is synced.
        let (_, steps) = observed(
            root,
            "wal/src/0001/obj",
            b"new",
            Some(b"data"),
            LocalPut::Overwrite,
        );
        assert!(matches!(&steps[0], Step::SyncedTemp(_)));
        assert_eq!(
            steps[1..],
            [
                Step::Published(d("wal/src/0001/obj")),
                Step::SyncedDir(d("wal/src/0001")),
            ]
        );
        assert_eq!(std::fs::read(d("wal/src/0001/obj")).unwrap(), b"new");
    }

    #[test]
    fn if_absent_never_replaces_and_syncs_an_existing_object_before_success() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let (written, _) = observed(root, "wal/x/obj", b"first", None, LocalPut::IfAbsent);
        assert!(written);
        let (written, steps) = observed(
            root,
            "wal/x/obj",
            b"second",
            Some(b"first"),
            LocalPut::IfAbsent,
        );
        assert!(!written);
        assert!(matches!(&steps[0], Step::SyncedTemp(_)));
        assert_eq!(
            steps[1..],
            [
                Step::SyncedExisting(root.join("wal/x/obj")),
                Step::SyncedDir(root.join("wal/x")),
            ]
        );
        assert_eq!(std::fs::read(root.join("wal/x/obj")).unwrap(), b"first");
        assert!(leftovers(&root.join("wal/x")).is_empty());
    }

    #[test]
    fn a_failed_write_leaves_no_temp_file_and_no_object() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir(root.join("d")).unwrap();
        // The name is a directory: publishing fails after the temp file was written.
        std::fs::create_dir(root.join("d/obj")).unwrap();
        std::fs::write(root.join("d/obj/keep"), b"x").unwrap();
        assert!(write_local(
            root,
            "d/obj",
            b"data",
            LocalPut::Overwrite,
            0o666,
            &mut |_| {}
        )
        .is_err());
        assert!(leftovers(&root.join("d")).is_empty());
        assert!(root.join("d/obj").is_dir());
    }

    #[test]
    fn new_files_get_their_mode_and_are_never_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let key = t.path().join("keys/sub/dedup.key");
        assert!(write_new_file_durably(&key, b"k1", 0o600).unwrap());
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!write_new_file_durably(&key, b"k2", 0o600).unwrap());
        assert_eq!(std::fs::read(&key).unwrap(), b"k1");
        assert!(leftovers(&t.path().join("keys/sub")).is_empty());
    }

    /// A store over the local directory `root`, named `t`.
    fn local_store(root: &Path) -> Store {
        Store {
            name: "t".into(),
            inner: Arc::new(object_store::local::LocalFileSystem::new_with_prefix(root).unwrap()),
            prefix: String::new(),
            local_root: Some(root.to_path_buf()),
            display: "file://t".into(),
            part_bytes: PART_BYTES,
        }
    }

    /// Issue 14: a spooled payload (a large manifest) is written to a
    /// local target from its file, in parts, through the temporary file and
    /// rename; a body that cannot be read to its end (here: shorter than
    /// said) fails the write and leaves neither the object nor a temporary
    /// file.
    #[test]
    fn a_spooled_payload_is_written_whole_or_not_at_all() {
        use std::io::Write;
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        let store = local_store(&root);
        // Larger than a part: written in several.
        let body: Vec<u8> = (0..PART_BYTES + 1000).map(|i| (i % 251) as u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&body).unwrap();
        let file = Arc::new(f);
        let payload = |body_len: u64| Payload::Spooled {
            head: Bytes::from_static(b"VCSNAP01head"),
            body: file.clone(),
            body_len,
        };
        assert_eq!(payload(5).len(), 17);
        runtime()
            .block_on(store.put_payload_async("snapshots/a", payload(body.len() as u64)))
            .unwrap();
        let stored = std::fs::read(root.join("snapshots/a")).unwrap();
        assert_eq!(&stored[..12], b"VCSNAP01head");
        assert!(stored[12..] == body[..]);

        let e = runtime()
            .block_on(store.put_payload_async("snapshots/b", payload(body.len() as u64 + 1)))
            .unwrap_err();
        assert!(crate::error::paragraph(&e).contains("snapshots/b"), "{e:#}");
        assert!(!root.join("snapshots/b").exists());
        assert!(leftovers(&root.join("snapshots")).is_empty());
    }

    #[test]
    fn listings_skip_temporary_files() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        let store = local_store(&root);
        store
            .put("snapshots/abc", Bytes::from_static(b"m"))
            .unwrap();
        // What a crash between the temp file and the rename leaves.
        std::fs::write(root.join("snapshots/def#12345000001"), b"").unwrap();
        let names: Vec<String> = store
            .list("snapshots")
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec!["snapshots/abc".to_string()]);
        assert!(!runtime()
            .block_on(store.put_if_absent_async("snapshots/abc", Bytes::from_static(b"z")))
            .unwrap());
        store.delete_many(&["snapshots/abc".to_string()]).unwrap();
        assert!(store.get("snapshots/abc").unwrap().is_none());
    }
}
