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
        let prefix = self.path(dir);
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        runtime().block_on(async {
            let metas: Vec<_> = self
                .inner
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|e| self.storage_error("listing", dir, e))?;
            Ok(metas
                .into_iter()
                .filter_map(|m| {
                    let full = m.location.to_string();
                    full.strip_prefix(&strip).map(|s| (s.to_string(), m.size))
                })
                .collect())
        })
    }

    /// Lists objects under a directory with their modification times (the
    /// storage server's clock, so hosts with skewed clocks agree on ages).
    pub fn list_detailed(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let prefix = self.path(dir);
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        runtime().block_on(async {
            let metas: Vec<_> = self
                .inner
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|e| self.storage_error("listing", dir, e))?;
            Ok(metas
                .into_iter()
                .filter_map(|m| {
                    let full = m.location.to_string();
                    full.strip_prefix(&strip).map(|s| ObjectInfo {
                        name: s.to_string(),
                        size: m.size,
                        modified_ms: m.last_modified.timestamp_millis(),
                    })
                })
                .collect())
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
