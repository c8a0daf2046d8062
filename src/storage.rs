//! Storage targets: `object_store` backends built from the config, with
//! retries, timeouts and a blocking facade for the pipeline's threads.
//!
//! S3-compatible stores (AWS, R2, B2, test servers) go through
//! `AmazonS3Builder` with path-style addressing when an endpoint is set;
//! transient errors (5xx, timeouts, resets) are retried by object_store with
//! exponential backoff and jitter. Local targets are fsynced after each put,
//! because a backup that a power cut can erase is not a backup.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig};

use crate::config::{Location, Target};
use crate::error::{ExitKind, Failure};

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

/// Writes `root/name` only if it does not exist: a temporary file in the
/// same directory, fsynced, hard-linked to the name (which never replaces
/// an existing file), then the directory fsynced. Plain blocking calls:
/// this is the archive_command's hot path.
fn put_new_local(root: &std::path::Path, name: &str, data: &[u8]) -> std::io::Result<bool> {
    use std::io::Write;
    let file = root.join(name);
    let dir = file.parent().unwrap_or(root).to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("object"),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        // The data (and the size that reads it back) is on disk before the
        // name appears; one directory sync then makes the name durable.
        f.sync_data()?;
        match std::fs::hard_link(&tmp, &file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e),
        }
        let _ = std::fs::remove_file(&tmp);
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(true)
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

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
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.name)
    }
}

impl Store {
    /// Builds the backend. `create` makes a missing local directory.
    pub fn open(target: &Target, create: bool) -> Result<Store> {
        match &target.location {
            Location::Local { path } => {
                if !path.exists() {
                    if create {
                        std::fs::create_dir_all(path).map_err(|e| {
                            Failure::new(
                                ExitKind::Failure,
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
                            ExitKind::RepoMissing,
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
                })
            }
            Location::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                path_style,
                allow_http,
                access_key_id,
                secret_access_key,
                session_token_env,
            } => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
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
                            .with_allow_http(*allow_http),
                    );
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(s) = access_key_id {
                    b = b.with_access_key_id(s.read()?);
                }
                if let Some(s) = secret_access_key {
                    b = b.with_secret_access_key(s.read()?);
                }
                if let Some(env) = session_token_env {
                    if let Ok(t) = std::env::var(env) {
                        b = b.with_token(t);
                    }
                }
                let s3 = b.build().map_err(|e| {
                    Failure::new(
                        ExitKind::Usage,
                        format!("target '{}' is misconfigured: {e}.", target.name),
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
                            .map(|e| format!(" at {e}"))
                            .unwrap_or_default()
                    ),
                })
            }
        }
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
                ExitKind::Failure,
                "Check the target's credentials and bucket permissions.",
            ),
            _ if self.local_root.is_some() => (ExitKind::Failure, "Check the disk and the directory's permissions."),
            _ => (
                ExitKind::Temporary,
                "The target may be down or unreachable; vaultctl retried with backoff. Try again later (exit 75 means a retry may succeed).",
            ),
        };
        Failure::new(
            kind,
            format!("target '{}': {op} {name} failed: {e}.", self.name),
        )
        .with_remedy(remedy)
        .into()
    }

    pub async fn put_async(&self, name: &str, data: Bytes) -> Result<()> {
        self.inner
            .put(&self.path(name), PutPayload::from_bytes(data))
            .await
            .map_err(|e| self.storage_error("writing", name, e))?;
        if let Some(root) = &self.local_root {
            let file = root.join(name);
            let dir = file.parent().map(|p| p.to_path_buf());
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                std::fs::File::open(&file)?.sync_all()?;
                if let Some(d) = dir {
                    std::fs::File::open(d)?.sync_all()?;
                }
                Ok(())
            })
            .await??;
        }
        Ok(())
    }

    pub fn put(&self, name: &str, data: Bytes) -> Result<()> {
        runtime().block_on(self.put_async(name, data))
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
        if let Some(root) = &self.local_root {
            return put_new_local(root, name, &data).map_err(|e| {
                self.storage_error(
                    "writing",
                    name,
                    object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: Box::new(e),
                    },
                )
            });
        }
        match self.inner.head(&self.path(name)).await {
            Ok(_) => return Ok(false),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.storage_error("checking", name, e)),
        }
        self.put_async(name, data).await?;
        Ok(true)
    }

    /// The first `len` bytes of an object (fewer when it is shorter);
    /// `None` when it does not exist.
    pub async fn get_head_async(&self, name: &str, len: usize) -> Result<Option<Bytes>> {
        let opts = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(0..len as u64)),
            ..Default::default()
        };
        match self.inner.get_opts(&self.path(name), opts).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| self.storage_error("reading", name, e))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.storage_error("reading", name, e)),
        }
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

    pub async fn delete_async(&self, name: &str) -> Result<()> {
        match self.inner.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.storage_error("deleting", name, e)),
        }
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        runtime().block_on(self.delete_async(name))
    }

    /// Deletes many objects, a few at a time (S3 round trips dominate).
    pub fn delete_many(&self, names: &[String]) -> Result<()> {
        runtime().block_on(async {
            for chunk in names.chunks(16) {
                for r in futures::future::join_all(chunk.iter().map(|n| self.delete_async(n))).await
                {
                    r?;
                }
            }
            Ok(())
        })
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

/// A listed object.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    /// Name relative to the repository.
    pub name: String,
    pub size: u64,
    /// Last modification, unix milliseconds, by the storage's clock.
    pub modified_ms: i64,
}
