//! Configuration: the TOML file, `VAULTCTL_*` environment overrides and the
//! embedded default used when no file exists.
//!
//! Precedence is command line > environment > file. The raw file is parsed
//! into [`FileConfig`] (unknown keys are errors: a typo must not silently
//! disable a target) and validated once into [`Config`]; the rest of the
//! program never sees an invalid combination. Secrets are never inline: the
//! file names environment variables or files that hold them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::error::{fail, ExitStatus, Failure};

/// Default zstd level: close to the best speed/ratio trade-off for dumps.
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 3;
/// Default zstd level for archived WAL: each segment is a process start on
/// the database server's critical path, so speed matters more than ratio.
pub const DEFAULT_WAL_COMPRESSION_LEVEL: i32 = 1;
/// Default target size of a pack before it is sealed and uploaded.
pub const DEFAULT_PACK_SIZE: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub catalog: Option<PathBuf>,
    #[serde(default)]
    pub keys: FileKeys,
    #[serde(default, rename = "target")]
    pub targets: Vec<FileTarget>,
    #[serde(default, rename = "source")]
    pub sources: Vec<FileSource>,
    pub compression_level: Option<i32>,
    /// zstd level for archived WAL (`wal push`); negative = zstd's fast modes.
    pub wal_compression_level: Option<i32>,
    /// Pack size in MiB.
    pub pack_size_mib: Option<usize>,
    /// Prometheus textfile written after every state-changing command.
    pub metrics_textfile: Option<PathBuf>,
    /// A repository lock not refreshed for this long is stale (default 10m).
    pub lock_stale_after: Option<String>,
    /// Connections a full logical restore loads on (default: the cores).
    pub restore_jobs: Option<usize>,
    /// A parallel restore cuts a table's rows into COPY segments of this
    /// many MiB, loaded on several connections at once (default 64).
    pub restore_segment_mib: Option<u64>,
    /// A parallel full restore starts the COPY blocks of at least this
    /// many MiB (from the backup's table of contents) at once, each on a
    /// connection and a reader of its own (default 64; 0 never).
    pub restore_side_block_mib: Option<u64>,
    /// 1 MiB chunks of rows queued in memory per restore connection before
    /// the rest spills to disk (default 4; 0 spills every chunk).
    pub restore_queue_chunks: Option<usize>,
    /// `maintenance_work_mem` of each restore connection, in MiB, for the
    /// index builds of post-data (default 256; 0 keeps the server's).
    pub restore_maintenance_work_mem_mib: Option<u64>,
    #[serde(default, rename = "notify")]
    pub notify: Vec<FileNotify>,
    /// `[verify]`: scheduled verification of the targets.
    pub verify: Option<FileVerify>,
}

/// `[verify]`: when and how the targets are verified on a schedule.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct FileVerify {
    /// systemd OnCalendar expression (or 5-field cron) for `schedule install`.
    pub schedule: Option<String>,
    /// `structure`, `read-data` or `sample` (with `sample = PERCENT`; also `sample=5`).
    pub mode: Option<String>,
    /// Percentage of packs a sampled verify reads (the least recently read first).
    pub sample: Option<f64>,
    /// The targets to verify (default: all).
    pub targets: Option<Vec<String>>,
    /// Stale when no successful verify of a target within this long (default: from the schedule).
    pub max_age: Option<String>,
    /// Over this long every pack should have been read (coverage; default 30d).
    pub window: Option<String>,
}

/// `[source.drill]`: a scheduled test restore of a postgres source.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct FileDrill {
    pub schedule: Option<String>,
    /// The scratch database (libpq URL without a password; must not exist).
    pub scratch_db: Option<String>,
    /// A file holding the password of scratch_db's role.
    pub password_file: Option<PathBuf>,
    /// Stale when no successful drill within this long (default: from the schedule).
    pub max_age: Option<String>,
    /// The recovery time objective the drills' achieved RTOs are drawn against.
    pub rto_goal: Option<String>,
}

/// One `[[notify]]` entry: where alerts are sent.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileNotify {
    pub kind: String,
    pub url: Option<String>,
    /// The webhook URL from an environment variable (it often holds a secret).
    pub url_env: Option<String>,
    /// The webhook URL from a file (relative: $CREDENTIALS_DIRECTORY first).
    pub url_file: Option<PathBuf>,
    pub format: Option<String>,
    #[serde(default)]
    pub command: Vec<String>,
    pub min_severity: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileKeys {
    #[serde(default)]
    pub recipients: Vec<String>,
    pub identity_file: Option<PathBuf>,
    pub dedup_key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileTarget {
    pub name: String,
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    /// `aws`, `r2`, `b2`, `minio` or `generic` (default): the defaults and
    /// write features that provider needs ([`Provider`]).
    pub provider: Option<String>,
    pub access_key_id_env: Option<String>,
    pub access_key_id_file: Option<PathBuf>,
    pub secret_access_key_env: Option<String>,
    pub secret_access_key_file: Option<PathBuf>,
    pub session_token_env: Option<String>,
    #[serde(default)]
    pub allow_http: bool,
    pub max_retries: Option<usize>,
    pub retry_timeout: Option<String>,
    pub request_timeout: Option<String>,
    /// `[target.retention]`: what `vaultctl prune` keeps on this target.
    pub retention: Option<FileRetention>,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct FileRetention {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    /// A duration such as "30d".
    pub keep_within: Option<String>,
    #[serde(default)]
    pub keep_tags: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub command: Vec<String>,
    /// For `command` sources: `stream` (default) or `tar` when stdout is a tar archive.
    pub format: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// systemd OnCalendar expression (or 5-field cron) for `schedule install`.
    pub schedule: Option<String>,
    /// Stale when no successful backup within this long (default: from the schedule).
    pub stale_after: Option<String>,
    /// healthchecks.io-style ping URL (/start, success, /fail).
    pub healthcheck_url: Option<String>,
    /// For `postgres` sources: a libpq URL without a password.
    pub url: Option<String>,
    /// For `postgres` sources: a file holding the password.
    pub password_file: Option<PathBuf>,
    /// For `postgres` sources: where pg_dump and psql are (default: PATH).
    pub pg_bin_dir: Option<PathBuf>,
    pub pg_dump: Option<PathBuf>,
    pub psql: Option<PathBuf>,
    /// For `postgres` sources: how tenants are identified.
    pub tenants: Option<FileTenants>,
    /// For `postgres` sources: `[source.drill]`, a scheduled test restore.
    pub drill: Option<FileDrill>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileTenants {
    pub table: String,
    pub key: String,
    pub column: String,
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    /// No file: the embedded default (one local repository, generated keys).
    Embedded,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub origin: Origin,
    pub catalog: PathBuf,
    pub keys: Keys,
    pub targets: Vec<Target>,
    pub sources: Vec<Source>,
    pub compression_level: i32,
    pub wal_compression_level: i32,
    pub pack_size: usize,
    pub metrics_textfile: Option<PathBuf>,
    pub notify: Vec<Notify>,
    /// How long a repository lock may go without a refresh before others
    /// call it stale; leases and refreshes scale with it.
    pub lock_timing: crate::settings::LockTiming,
    /// "Now" for operations: the system clock, or `VAULTCTL_NOW` (tests).
    pub clock: crate::clock::Clock,
    /// `[verify]`: scheduled verification, when configured.
    pub verify: Option<VerifyPlan>,
    /// Connections a full logical restore loads on (`--jobs`).
    pub restore_jobs: usize,
    /// `restore_segment_mib`, in bytes.
    pub restore_segment: u64,
    /// `restore_side_block_mib`, in bytes (0: never).
    pub restore_side_block: u64,
    /// `restore_queue_chunks`.
    pub restore_queue: usize,
    /// `restore_maintenance_work_mem_mib` (0: the server's own setting).
    pub restore_maintenance_work_mem_mib: u64,
}

/// The default of `restore_segment_mib`.
pub const DEFAULT_RESTORE_SEGMENT_MIB: u64 = 64;
/// The default of `restore_side_block_mib`.
pub const DEFAULT_RESTORE_SIDE_BLOCK_MIB: u64 = 64;
/// The default of `restore_queue_chunks`.
pub const DEFAULT_RESTORE_QUEUE: usize = 4;
/// The default of `restore_maintenance_work_mem_mib`.
pub const DEFAULT_RESTORE_MAINTENANCE_WORK_MEM_MIB: u64 = 256;

/// The default of `restore_jobs`: the number of cores.
pub fn default_restore_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// How a verify run reads pack data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VerifyMode {
    Structure,
    ReadData,
    /// This percentage of packs, the least recently read first.
    Sample(f64),
}

/// The validated `[verify]` table.
#[derive(Debug, Clone)]
pub struct VerifyPlan {
    pub schedule: Option<crate::schedule::Schedule>,
    pub mode: VerifyMode,
    /// The targets verified on the schedule (all when the key is absent).
    pub targets: Vec<String>,
    /// Explicit `max_age`; else derived from the schedule.
    pub max_age: Option<Duration>,
    /// Every pack should have been read within this long (sample coverage).
    pub window: Duration,
}

/// Default coverage window of sampled verifies.
pub const DEFAULT_VERIFY_WINDOW: Duration = Duration::from_secs(30 * 86400);

impl VerifyPlan {
    /// Stale after: `max_age`, else the schedule's longest interval plus grace.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
            .or_else(|| self.schedule.as_ref().map(|s| s.default_stale_after()))
    }
}

/// The validated `[source.drill]` table of a postgres source.
#[derive(Debug, Clone)]
pub struct DrillPlan {
    pub schedule: Option<crate::schedule::Schedule>,
    /// Scratch database URL (no password); None = `vaultctl_drill_SOURCE` on the source's server.
    pub scratch_db: Option<String>,
    pub password_file: Option<PathBuf>,
    pub max_age: Option<Duration>,
    /// The recovery time objective (`report` draws drill RTOs against it).
    pub rto_goal: Option<Duration>,
}

impl DrillPlan {
    /// Stale after: `max_age`, else the schedule's longest interval plus grace.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
            .or_else(|| self.schedule.as_ref().map(|s| s.default_stale_after()))
    }
}

impl Config {
    /// The configured source `name`; a usage error naming the configured
    /// ones when there is none.
    pub fn source(&self, name: &str) -> Result<&Source> {
        named("source", name, &self.sources, |s| &s.name)
    }

    /// The configured target `name`; a usage error naming the configured
    /// ones when there is none.
    pub fn target(&self, name: &str) -> Result<&Target> {
        named("target", name, &self.targets, |t| &t.name)
    }

    /// The `[source.drill]` of `source`, if it has one.
    pub fn drill_plan(&self, source: &str) -> Option<&DrillPlan> {
        self.sources
            .iter()
            .find(|s| s.name == source)
            .and_then(|s| s.drill.as_ref())
    }

    /// `name` in the catalog's directory, where vaultctl keeps its local
    /// state (spools, spill files, sandboxes).
    pub fn beside_catalog(&self, name: &str) -> PathBuf {
        self.catalog
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(name)
    }

    /// Where tenant point-in-time restores put their sandbox clusters
    /// unless `--work-dir` says otherwise: `sandbox/` beside the catalog.
    pub fn sandbox_dir(&self) -> PathBuf {
        self.beside_catalog("sandbox")
    }

    /// Where a parallel restore spills COPY data its connections have not
    /// taken yet (beside the catalog; the files are unlinked at once).
    pub fn restore_spill_dir(&self) -> PathBuf {
        self.beside_catalog("restore-spill")
    }

    /// Where an export of many tenants spills each table's rows, ordered by
    /// tenant, before it merges them (beside the catalog; unnamed files).
    pub fn tenant_spill_dir(&self) -> PathBuf {
        self.beside_catalog("tenant-spill")
    }
}

/// A validated `[[notify]]` entry.
#[derive(Debug, Clone)]
pub struct Notify {
    pub kind: NotifyKind,
    pub min_severity: crate::severity::Severity,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum NotifyKind {
    Webhook { url: WebhookUrl, slack: bool },
    Command { argv: Vec<String> },
}

/// A webhook URL: inline, or a secret read when a notification is sent.
#[derive(Debug, Clone)]
pub enum WebhookUrl {
    Inline(String),
    Secret(Secret),
}

impl WebhookUrl {
    pub fn get(&self) -> Result<String> {
        match self {
            WebhookUrl::Inline(u) => Ok(u.clone()),
            WebhookUrl::Secret(s) => s.read(),
        }
    }

    pub fn file(&self) -> Option<&Path> {
        match self {
            WebhookUrl::Secret(Secret::File(p)) => Some(p),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Keys {
    /// age X25519 (`age1…`) and ssh-ed25519 public keys.
    pub recipients: Vec<String>,
    /// Needed only to read contents (restore, content verify).
    pub identity_file: Option<PathBuf>,
    /// The repository's dedup key; a write-only host needs it to back up.
    pub dedup_key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub location: Location,
    pub max_retries: usize,
    pub retry_timeout: Duration,
    pub request_timeout: Duration,
    /// What `prune` keeps; `None` keeps every backup (prune only collects garbage).
    pub retention: Option<crate::settings::Policy>,
}

#[derive(Debug, Clone)]
pub enum Location {
    Local {
        path: PathBuf,
    },
    S3 {
        place: crate::storage::S3Place,
        /// The provider preset the target was configured with.
        provider: Provider,
        access_key_id: Option<Secret>,
        secret_access_key: Option<Secret>,
        session_token_env: Option<String>,
    },
}

/// The process's `AWS_*` variables (both name and value valid UTF-8), which
/// an S3 target takes as defaults under what the config sets: credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), web
/// identity and container credentials, `AWS_ENDPOINT` and the like, as
/// `object_store`'s `AmazonS3Builder::from_env` would read them.
fn aws_environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect()
}

impl Target {
    /// What storage needs to open this target ([`crate::storage::Store::open`]):
    /// the secrets are read here (a usage error when one is missing), the
    /// session token from its environment variable when that is set.
    pub fn store_spec(&self) -> Result<crate::storage::StoreSpec> {
        use crate::storage::StoreLocation;
        let location = match &self.location {
            Location::Local { path } => StoreLocation::Local { path: path.clone() },
            Location::S3 {
                place,
                provider,
                access_key_id,
                secret_access_key,
                session_token_env,
            } => StoreLocation::S3 {
                place: place.clone(),
                conditional_writes: provider.conditional_writes(),
                access_key_id: access_key_id.as_ref().map(Secret::read).transpose()?,
                secret_access_key: secret_access_key.as_ref().map(Secret::read).transpose()?,
                session_token: session_token_env
                    .as_ref()
                    .and_then(|env| std::env::var(env).ok()),
                aws_environment: aws_environment(),
            },
        };
        Ok(crate::storage::StoreSpec {
            name: self.name.clone(),
            location,
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
            request_timeout: self.request_timeout,
        })
    }
}

/// An S3 provider preset (`provider = "…"` on a target): the defaults each
/// needs. vaultctl writes every object with one PUT (no multipart upload,
/// so R2's equal-part-size rule never applies) and sends no
/// `x-amz-checksum-*` headers (which some B2 endpoints reject), whatever
/// the provider; what differs is addressing, region and whether
/// conditional writes (`If-None-Match: *`) are sent at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Amazon S3: virtual-hosted addressing, the configured region.
    Aws,
    /// Cloudflare R2: an account endpoint, region `auto`, path-style.
    R2,
    /// Backblaze B2: its S3 endpoint, the region from the endpoint's name,
    /// path-style; no conditional writes (unreliable on B2).
    B2,
    /// MinIO and similar self-hosted servers: path-style, `us-east-1`.
    Minio,
    /// Anything else: path-style when an endpoint is set.
    Generic,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Provider> {
        Some(match s {
            "aws" => Provider::Aws,
            "r2" => Provider::R2,
            "b2" => Provider::B2,
            "minio" => Provider::Minio,
            "generic" => Provider::Generic,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::R2 => "r2",
            Provider::B2 => "b2",
            Provider::Minio => "minio",
            Provider::Generic => "generic",
        }
    }

    /// Whether it needs an `endpoint`.
    fn needs_endpoint(self) -> bool {
        matches!(self, Provider::R2 | Provider::B2 | Provider::Minio)
    }

    /// Whether conditional writes are sent (B2's are unreliable).
    pub fn conditional_writes(self) -> bool {
        self != Provider::B2
    }

    /// The default region (`None`: the file's, else us-east-1).
    fn default_region(self, endpoint: Option<&str>) -> Option<String> {
        match self {
            Provider::R2 => Some("auto".into()),
            // https://s3.us-west-004.backblazeb2.com
            Provider::B2 => endpoint
                .and_then(|e| e.split("://").last())
                .and_then(|h| h.strip_prefix("s3."))
                .and_then(|h| h.split('.').next())
                .map(str::to_string),
            _ => None,
        }
    }

    /// The default addressing.
    fn default_path_style(self, has_endpoint: bool) -> bool {
        match self {
            Provider::Aws => false,
            Provider::R2 | Provider::B2 | Provider::Minio => true,
            Provider::Generic => has_endpoint,
        }
    }
}

/// Where a secret is read from; the value itself is read only when needed.
#[derive(Debug, Clone)]
pub enum Secret {
    Env(String),
    File(PathBuf),
}

impl Secret {
    pub fn read(&self) -> Result<String> {
        match self {
            Secret::Env(name) => std::env::var(name).map_err(|_| {
                Failure::new(
                    ExitStatus::Usage,
                    format!("the environment variable {name} named in the config is not set."),
                )
                .with_remedy(format!("Export {name} (for example from a systemd credential) before running vaultctl."))
                .into()
            }),
            Secret::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Failure::new(ExitStatus::Usage, format!("cannot read the secret file {}: {e}.", path.display()))
                        .with_remedy("Check the path in the config and that this user may read it.")
                })?;
                Ok(text.trim().to_string())
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub spec: SourceSpec,
    pub tags: Vec<String>,
    pub schedule: Option<crate::schedule::Schedule>,
    pub stale_after: Option<Duration>,
    pub healthcheck_url: Option<String>,
    /// `[source.drill]` (postgres sources only).
    pub drill: Option<DrillPlan>,
}

#[derive(Debug, Clone)]
pub enum SourceSpec {
    Files {
        paths: Vec<PathBuf>,
    },
    Command {
        argv: Vec<String>,
        tar: bool,
    },
    Postgres(PostgresSpec),
    /// A PostgreSQL cluster backed up physically (pg_basebackup + WAL).
    PostgresPhysical(PhysicalSpec),
}

impl SourceSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Files { .. } => "files",
            SourceSpec::Command { .. } => "command",
            SourceSpec::Postgres(_) => "postgres",
            SourceSpec::PostgresPhysical(_) => "postgres-physical",
        }
    }
}

/// A PostgreSQL cluster for physical backups and WAL archiving: a role with
/// REPLICATION, its password (never inline) and the server programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalSpec {
    /// `postgresql://replicator@host:port/postgres` (no password).
    pub url: String,
    pub password_file: Option<PathBuf>,
    /// Where pg_basebackup, pg_ctl and pg_controldata are (default: PATH).
    pub pg_bin_dir: Option<PathBuf>,
}

impl PhysicalSpec {
    pub fn program(&self, name: &str) -> PathBuf {
        pg_program(None, self.pg_bin_dir.as_deref(), name)
    }
}

/// A PostgreSQL database: where it is, how to authenticate (never inline),
/// which client binaries to use, and how its tenants are identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSpec {
    /// `postgresql://user@host:port/db` (no password).
    pub url: String,
    pub password_file: Option<PathBuf>,
    pub pg_dump: PathBuf,
    pub psql: PathBuf,
    pub tenants: Option<TenantSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TenantSpec {
    /// The tenants table (optionally `schema.table`).
    pub table: String,
    /// The tenants table's identifying column.
    pub key: String,
    /// The column every tenant-owned table carries.
    pub column: String,
}

/// The path of a PostgreSQL client program: an explicit path, else in
/// `bin_dir`, else the bare name (looked up in PATH).
pub fn pg_program(explicit: Option<&Path>, bin_dir: Option<&Path>, name: &str) -> PathBuf {
    match (explicit, bin_dir) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(d)) => d.join(name),
        (None, None) => PathBuf::from(name),
    }
}

/// Overrides from the command line (highest precedence).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub catalog: Option<PathBuf>,
    pub identity_file: Option<PathBuf>,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/root"))
}

/// `$XDG_CONFIG_HOME/vaultctl` (or `~/.config/vaultctl`).
pub fn config_dir() -> PathBuf {
    env_path("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home().join(".config"))
        .join("vaultctl")
}

/// `$XDG_DATA_HOME/vaultctl` (or `~/.local/share/vaultctl`).
pub fn data_dir() -> PathBuf {
    env_path("XDG_DATA_HOME")
        .unwrap_or_else(|| home().join(".local/share"))
        .join("vaultctl")
}

/// Finds the config file: `--config`, `$VAULTCTL_CONFIG`, the XDG path, `/etc`.
pub fn find_config_file(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(p) = explicit {
        if !p.exists() {
            return fail(
                ExitStatus::Usage,
                format!(
                    "the config file {} given with --config does not exist.",
                    p.display()
                ),
                "Check the path, or omit --config to use the search order in the README.",
            );
        }
        return Ok(Some(p.to_path_buf()));
    }
    if let Some(p) = env_path("VAULTCTL_CONFIG") {
        if !p.exists() {
            return fail(
                ExitStatus::Usage,
                format!(
                    "the config file {} named by $VAULTCTL_CONFIG does not exist.",
                    p.display()
                ),
                "Fix or unset VAULTCTL_CONFIG.",
            );
        }
        return Ok(Some(p));
    }
    for candidate in [
        config_dir().join("config.toml"),
        PathBuf::from("/etc/vaultctl/config.toml"),
    ] {
        if candidate.exists() {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// Loads and validates the configuration, applying env and CLI overrides.
pub fn load(overrides: &Overrides) -> Result<Config> {
    let path = find_config_file(overrides.config.as_deref())?;
    let mut config = match &path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the config file {}", p.display()))?;
            let raw: FileConfig = toml::from_str(&text).map_err(|e| {
                Failure::new(
                    ExitStatus::Usage,
                    format!(
                        "the config file {} is invalid: {}",
                        p.display(),
                        e.message().trim()
                    ),
                )
                .with_remedy(format!(
                    "{}See config.example.toml for every key.",
                    e.span()
                        .map(|s| format!("The problem is near byte {}. ", s.start))
                        .unwrap_or_default()
                ))
            })?;
            validate(raw, Origin::File(p.clone()))?
        }
        None => embedded_default(),
    };
    if let Some(c) = env_path("VAULTCTL_CATALOG") {
        config.catalog = c;
    }
    if let Some(i) = env_path("VAULTCTL_IDENTITY_FILE") {
        config.keys.identity_file = Some(i);
    }
    if let Some(d) = env_path("VAULTCTL_DEDUP_KEY_FILE") {
        config.keys.dedup_key_file = d;
    }
    apply_runtime_env(&mut config, |k| std::env::var(k).ok());
    if let Some(c) = &overrides.catalog {
        config.catalog = c.clone();
    }
    if let Some(i) = &overrides.identity_file {
        config.keys.identity_file = Some(i.clone());
    }
    Ok(config)
}

/// The item of `items` called `name`, or a usage error that lists them.
fn named<'a, T>(
    what: &str,
    name: &str,
    items: &'a [T],
    name_of: impl Fn(&T) -> &str,
) -> Result<&'a T> {
    if let Some(item) = items.iter().find(|i| name_of(i) == name) {
        return Ok(item);
    }
    let names: Vec<&str> = items.iter().map(&name_of).collect();
    fail(
        ExitStatus::Usage,
        format!("there is no {what} named '{name}' in the config."),
        format!(
            "Configured {what}s: {}.",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        ),
    )
}

/// A validated configuration from TOML text (relative paths under
/// `/etc/vaultctl`), for unit tests of the layers above.
#[cfg(test)]
pub(crate) fn from_toml(text: &str) -> Config {
    let raw: FileConfig = toml::from_str(text).expect("test config parses");
    validate(
        raw,
        Origin::File(PathBuf::from("/etc/vaultctl/config.toml")),
    )
    .expect("test config is valid")
}

/// The settings the environment gives at run time, read once here so the
/// core never reads the environment: `VAULTCTL_NOW` (an RFC 3339 time that
/// fixes the operations clock; tests inject "now" through it) and
/// `VAULTCTL_LOCK_WAIT` (how long writers wait for a prune's lock). Values
/// that do not parse are ignored with a warning.
pub fn apply_runtime_env(config: &mut Config, get: impl Fn(&str) -> Option<String>) {
    match crate::clock::Clock::from_override(get("VAULTCTL_NOW").as_deref()) {
        Ok(clock) => config.clock = clock,
        Err(e) => tracing::warn!("VAULTCTL_NOW: {e}; using the clock"),
    }
    if let Some(v) = get("VAULTCTL_LOCK_WAIT") {
        match parse_duration(&v) {
            Ok(d) => config.lock_timing = config.lock_timing.with_writer_wait(d),
            Err(e) => tracing::warn!("VAULTCTL_LOCK_WAIT: {e}; waiting 30m"),
        }
    }
}

/// The configuration used when there is no file: one local repository under
/// the XDG data directory, keys under the XDG config directory.
pub fn embedded_default() -> Config {
    let data = data_dir();
    let conf = config_dir();
    Config {
        origin: Origin::Embedded,
        catalog: data.join("catalog.db"),
        keys: Keys {
            recipients: Vec::new(),
            identity_file: Some(conf.join("identity.txt")),
            dedup_key_file: conf.join("dedup.key"),
        },
        targets: vec![Target {
            name: "local".into(),
            location: Location::Local {
                path: data.join("repo"),
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            retention: None,
        }],
        sources: Vec::new(),
        compression_level: DEFAULT_COMPRESSION_LEVEL,
        wal_compression_level: DEFAULT_WAL_COMPRESSION_LEVEL,
        pack_size: DEFAULT_PACK_SIZE,
        metrics_textfile: None,
        notify: Vec::new(),
        lock_timing: crate::settings::LockTiming::default(),
        clock: crate::clock::Clock::system(),
        verify: None,
        restore_jobs: default_restore_jobs(),
        restore_segment: DEFAULT_RESTORE_SEGMENT_MIB << 20,
        restore_side_block: DEFAULT_RESTORE_SIDE_BLOCK_MIB << 20,
        restore_queue: DEFAULT_RESTORE_QUEUE,
        restore_maintenance_work_mem_mib: DEFAULT_RESTORE_MAINTENANCE_WORK_MEM_MIB,
    }
}

fn usage<T>(what: String, remedy: &str) -> Result<T> {
    fail(ExitStatus::Usage, what, remedy)
}

/// Resolves a path from the config file relative to the file's directory.
fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Resolves a secret file: relative names are looked up in
/// `$CREDENTIALS_DIRECTORY` first (systemd `LoadCredential=`).
fn resolve_secret_file(base: &Path, p: &Path) -> PathBuf {
    if p.is_relative() {
        if let Some(dir) = env_path("CREDENTIALS_DIRECTORY") {
            let candidate = dir.join(p);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    resolve(base, p)
}

pub fn validate(raw: FileConfig, origin: Origin) -> Result<Config> {
    let base = match &origin {
        Origin::File(p) => p
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        Origin::Embedded => config_dir(),
    };
    let mut targets = Vec::new();
    for t in &raw.targets {
        if targets.iter().any(|x: &Target| x.name == t.name) {
            return usage(
                format!("two targets are named '{}'.", t.name),
                "Give every [[target]] a unique name.",
            );
        }
        targets.push(validate_target(&base, t)?);
    }
    if targets.is_empty() {
        return usage(
            "the config file defines no [[target]].".into(),
            "Add at least one target, for example: [[target]] name = \"local\" url = \"file:///var/backups/vaultctl\".",
        );
    }
    let mut sources = Vec::new();
    for s in &raw.sources {
        if sources.iter().any(|x: &Source| x.name == s.name) {
            return usage(
                format!("two sources are named '{}'.", s.name),
                "Give every [[source]] a unique name.",
            );
        }
        validate_name(&s.name, "source")?;
        let spec = match s.kind.as_str() {
            "files" => {
                if s.paths.is_empty() {
                    return usage(
                        format!("source '{}' of kind files has no paths.", s.name),
                        "Add paths = [\"/etc/app\"].",
                    );
                }
                SourceSpec::Files {
                    paths: s.paths.iter().map(|p| resolve(&base, p)).collect(),
                }
            }
            "command" => {
                if s.command.is_empty() {
                    return usage(
                        format!("source '{}' of kind command has no command.", s.name),
                        "Add command = [\"sh\", \"-c\", \"...\"] (an argv list).",
                    );
                }
                let tar = match s.format.as_deref() {
                    None | Some("stream") => false,
                    Some("tar") => true,
                    Some(other) => {
                        return usage(
                            format!("source '{}' has format = \"{other}\".", s.name),
                            "Use format = \"stream\" (default) or \"tar\".",
                        )
                    }
                };
                SourceSpec::Command {
                    argv: s.command.clone(),
                    tar,
                }
            }
            "postgres" => SourceSpec::Postgres(validate_postgres(&base, s)?),
            "postgres-physical" => SourceSpec::PostgresPhysical(validate_physical(&base, s)?),
            other => {
                return usage(
                    format!("source '{}' has an unknown kind \"{other}\".", s.name),
                    "Supported kinds: files, command, postgres, postgres-physical.",
                )
            }
        };
        let (schedule, stale_after, healthcheck_url) = validate_source_ops(s)?;
        let drill = match (&s.drill, &spec) {
            (None, _) => None,
            (Some(d), SourceSpec::Postgres(_)) => Some(validate_drill(&base, &s.name, d)?),
            (Some(_), other) => {
                return usage(
                    format!(
                        "source '{}' of kind {} has a [source.drill] table.",
                        s.name,
                        other.kind()
                    ),
                    "DR drills restore a logical PostgreSQL dump: [source.drill] belongs to postgres sources only; remove it.",
                )
            }
        };
        sources.push(Source {
            name: s.name.clone(),
            spec,
            tags: s.tags.clone(),
            schedule,
            stale_after,
            healthcheck_url,
            drill,
        });
    }
    let wal_level = raw
        .wal_compression_level
        .unwrap_or(DEFAULT_WAL_COMPRESSION_LEVEL);
    if !(-7..=19).contains(&wal_level) || wal_level == 0 {
        return usage(
            format!("wal_compression_level = {wal_level} is out of range."),
            "Use -7 to -1 (zstd's fast modes) or 1 to 19 (default 1).",
        );
    }
    let restore_jobs = raw.restore_jobs.unwrap_or_else(default_restore_jobs);
    if !(1..=256).contains(&restore_jobs) {
        return usage(
            format!("restore_jobs = {restore_jobs} is out of range."),
            "Use 1 to 256 (default: the number of cores).",
        );
    }
    let segment_mib = raw
        .restore_segment_mib
        .unwrap_or(DEFAULT_RESTORE_SEGMENT_MIB);
    if !(1..=65536).contains(&segment_mib) {
        return usage(
            format!("restore_segment_mib = {segment_mib} is out of range."),
            "Use 1 to 65536 (MiB of rows per COPY segment; default 64).",
        );
    }
    let side_mib = raw
        .restore_side_block_mib
        .unwrap_or(DEFAULT_RESTORE_SIDE_BLOCK_MIB);
    if side_mib > 1 << 30 {
        return usage(
            format!("restore_side_block_mib = {side_mib} is out of range."),
            "Use 0 to 1073741824 (MiB of a COPY block started at once on a connection of its own; 0 never; default 64).",
        );
    }
    let restore_queue = raw.restore_queue_chunks.unwrap_or(DEFAULT_RESTORE_QUEUE);
    if restore_queue > 1024 {
        return usage(
            format!("restore_queue_chunks = {restore_queue} is out of range."),
            "Use 0 to 1024 (1 MiB chunks queued in memory per connection; default 4).",
        );
    }
    let restore_maintenance_work_mem_mib = raw
        .restore_maintenance_work_mem_mib
        .unwrap_or(DEFAULT_RESTORE_MAINTENANCE_WORK_MEM_MIB);
    if restore_maintenance_work_mem_mib > 2 * 1024 * 1024 {
        return usage(
            format!("restore_maintenance_work_mem_mib = {restore_maintenance_work_mem_mib} is out of range."),
            "Use 0 to 2097152 (MiB of the server's memory per restore connection for index builds; 0 keeps the server's maintenance_work_mem; default 256).",
        );
    }
    let level = raw.compression_level.unwrap_or(DEFAULT_COMPRESSION_LEVEL);
    if !(1..=19).contains(&level) {
        return usage(
            format!("compression_level = {level} is out of range."),
            "Use a zstd level from 1 to 19 (default 3).",
        );
    }
    let pack_size = raw
        .pack_size_mib
        .map(|m| m * 1024 * 1024)
        .unwrap_or(DEFAULT_PACK_SIZE);
    if !(1024 * 1024..=512 * 1024 * 1024).contains(&pack_size) {
        return usage(
            "pack_size_mib must be between 1 and 512.".into(),
            "The default of 16 suits most targets.",
        );
    }
    let lock_timing = match &raw.lock_stale_after {
        None => crate::settings::LockTiming::default(),
        Some(text) => {
            use crate::settings::{MAX_STALE_AFTER, MIN_STALE_AFTER};
            let d = parse_duration(text).map_err(|e| {
                Failure::new(ExitStatus::Usage, format!("lock_stale_after: {e}."))
                    .with_remedy("Write a duration such as \"10m\" (the default).")
            })?;
            if !(MIN_STALE_AFTER..=MAX_STALE_AFTER).contains(&d) {
                return usage(
                    format!("lock_stale_after = \"{text}\" is out of range."),
                    "Use 2s to 24h; the default of 10m suits production (short values are for tests).",
                );
            }
            if d < Duration::from_secs(60) {
                tracing::warn!("lock_stale_after = \"{text}\" is meant for tests: a backup or prune stalled for 30% of it loses its lock and fails");
            }
            crate::settings::LockTiming::new(d)
        }
    };
    let notify = raw
        .notify
        .iter()
        .enumerate()
        .map(|(i, n)| validate_notify(&base, i + 1, n))
        .collect::<Result<Vec<_>>>()?;
    let verify = raw
        .verify
        .as_ref()
        .map(|v| validate_verify(v, &targets))
        .transpose()?;
    Ok(Config {
        verify,
        metrics_textfile: raw.metrics_textfile.as_ref().map(|p| resolve(&base, p)),
        notify,
        catalog: raw
            .catalog
            .map(|c| resolve(&base, &c))
            .unwrap_or_else(|| data_dir().join("catalog.db")),
        keys: Keys {
            recipients: raw.keys.recipients.clone(),
            identity_file: raw
                .keys
                .identity_file
                .as_ref()
                .map(|p| resolve_secret_file(&base, p)),
            dedup_key_file: raw
                .keys
                .dedup_key_file
                .as_ref()
                .map(|p| resolve_secret_file(&base, p))
                .unwrap_or_else(|| base.join("dedup.key")),
        },
        origin,
        targets,
        sources,
        compression_level: level,
        wal_compression_level: wal_level,
        pack_size,
        lock_timing,
        clock: crate::clock::Clock::system(),
        restore_jobs,
        restore_segment: segment_mib << 20,
        restore_side_block: side_mib << 20,
        restore_queue,
        restore_maintenance_work_mem_mib,
    })
}

/// A `schedule` key; `what` names its table in the error.
fn parse_schedule(text: &str, what: &str) -> Result<crate::schedule::Schedule> {
    crate::schedule::Schedule::parse(text).map_err(|e| {
        Failure::new(ExitStatus::Usage, format!("{what} has schedule = \"{text}\": {e}.")).with_remedy(
            "Use systemd OnCalendar syntax such as \"daily\", \"hourly\", \"*-*-* 02:00:00\", \"Sun *-*-* 03:00:00\" or \"Mon..Fri 01:30\", or a 5-field cron expression (\"30 1 * * 1-5\"); times are UTC.",
        )
        .into()
    })
}

/// A positive duration key (`max_age`, `window`); `what` names it in the error.
fn positive_duration(text: &str, what: &str) -> Result<Duration> {
    let d = parse_duration(text).map_err(|e| {
        Failure::new(ExitStatus::Usage, format!("{what} = \"{text}\": {e}."))
            .with_remedy("Write durations like 90m, 26h or 8d.")
    })?;
    if d.is_zero() {
        return usage(
            format!("{what} = \"{text}\" is zero."),
            "Use a positive duration such as 26h.",
        );
    }
    Ok(d)
}

fn validate_verify(v: &FileVerify, targets: &[Target]) -> Result<VerifyPlan> {
    let schedule = v
        .schedule
        .as_deref()
        .map(|t| parse_schedule(t, "[verify]"))
        .transpose()?;
    let percent = |p: f64| -> Result<f64> {
        if p > 0.0 && p <= 100.0 {
            Ok(p)
        } else {
            usage(
                format!("[verify] sample = {p} is not a percentage above 0 and at most 100."),
                "Write sample = 5 for 5 % of the packs per run.",
            )
        }
    };
    let mode_text = v.mode.as_deref().map(|m| m.trim().to_ascii_lowercase());
    let mode = match (mode_text.as_deref(), v.sample) {
        (None, None) | (Some("structure"), None) => VerifyMode::Structure,
        (Some("read-data"), None) => VerifyMode::ReadData,
        (Some("sample") | None, Some(p)) => VerifyMode::Sample(percent(p)?),
        (Some("sample"), None) => {
            return usage(
                "[verify] has mode = \"sample\" but no sample = PERCENT.".into(),
                "Add sample = 5 (read 5 % of the packs per run, the least recently read first).",
            )
        }
        (Some(m), None) if m.starts_with("sample") => {
            let p = m
                .trim_start_matches("sample")
                .trim_start_matches([' ', '=', ':'])
                .trim_end_matches('%')
                .trim();
            let p: f64 = p.parse().map_err(|_| {
                Failure::new(ExitStatus::Usage, format!("[verify] has mode = \"{m}\"."))
                    .with_remedy("Write mode = \"sample\" with sample = 5, or mode = \"sample=5\".")
            })?;
            VerifyMode::Sample(percent(p)?)
        }
        (Some(m), Some(_)) if m != "sample" => {
            return usage(
                format!("[verify] has mode = \"{m}\" and a sample percentage."),
                "sample = PERCENT goes with mode = \"sample\" only; remove one of them.",
            )
        }
        (Some(m), _) => {
            return usage(
                format!("[verify] has an unknown mode \"{m}\"."),
                "Use structure, read-data or sample (with sample = PERCENT).",
            )
        }
    };
    let names: Vec<String> = match &v.targets {
        None => targets.iter().map(|t| t.name.clone()).collect(),
        Some(list) => {
            if list.is_empty() {
                return usage(
                    "[verify] targets = [] names no target.".into(),
                    "List the targets to verify, or remove the key to verify all of them.",
                );
            }
            for n in list {
                if !targets.iter().any(|t| &t.name == n) {
                    return usage(
                        format!("[verify] targets names '{n}', which is not a [[target]]."),
                        "Use the name of a configured target.",
                    );
                }
            }
            list.clone()
        }
    };
    Ok(VerifyPlan {
        schedule,
        mode,
        targets: names,
        max_age: v
            .max_age
            .as_deref()
            .map(|t| positive_duration(t, "[verify] max_age"))
            .transpose()?,
        window: v
            .window
            .as_deref()
            .map(|t| positive_duration(t, "[verify] window"))
            .transpose()?
            .unwrap_or(DEFAULT_VERIFY_WINDOW),
    })
}

fn validate_drill(base: &Path, source: &str, d: &FileDrill) -> Result<DrillPlan> {
    let what = format!("source '{source}' [source.drill]");
    let schedule = d
        .schedule
        .as_deref()
        .map(|t| parse_schedule(t, &what))
        .transpose()?;
    if let Some(url) = &d.scratch_db {
        let parsed: tokio_postgres::Config = url.parse().map_err(|e| {
            Failure::new(
                ExitStatus::Usage,
                format!(
                    "{what} has an invalid scratch_db: {}.",
                    crate::redact::conninfo_error(&e)
                ),
            )
            .with_remedy("Write postgresql://USER@HOST:PORT/SCRATCH_DATABASE.")
        })?;
        if parsed.get_password().is_some() {
            return usage(
                format!("{what} has a password in its scratch_db."),
                "Remove it from the URL and use password_file instead: a password in the config ends up in logs, unit files and process lists.",
            );
        }
        if parsed.get_dbname().is_none() {
            return usage(
                format!("{what} names no database in its scratch_db."),
                "Write postgresql://USER@HOST:PORT/SCRATCH_DATABASE (a database that does not exist: the drill creates and drops it).",
            );
        }
    } else if d.password_file.is_some() {
        return usage(
            format!("{what} has password_file but no scratch_db."),
            "Without scratch_db the drill uses the source's own connection and password; remove password_file or add scratch_db.",
        );
    }
    Ok(DrillPlan {
        schedule,
        scratch_db: d.scratch_db.clone(),
        password_file: d
            .password_file
            .as_ref()
            .map(|p| resolve_secret_file(base, p)),
        max_age: d
            .max_age
            .as_deref()
            .map(|t| positive_duration(t, &format!("{what} max_age")))
            .transpose()?,
        rto_goal: d
            .rto_goal
            .as_deref()
            .map(|t| positive_duration(t, &format!("{what} rto_goal")))
            .transpose()?,
    })
}

type SourceOps = (
    Option<crate::schedule::Schedule>,
    Option<Duration>,
    Option<String>,
);

/// The operations keys of a source: schedule, stale_after, healthcheck_url.
fn validate_source_ops(s: &FileSource) -> Result<SourceOps> {
    let schedule = match &s.schedule {
        None => None,
        Some(text) => Some(crate::schedule::Schedule::parse(text).map_err(|e| {
            Failure::new(ExitStatus::Usage, format!("source '{}' has schedule = \"{text}\": {e}.", s.name)).with_remedy(
                "Use systemd OnCalendar syntax such as \"daily\", \"hourly\", \"*-*-* 02:00:00\", \"Sun *-*-* 03:00:00\" or \"Mon..Fri 01:30\", or a 5-field cron expression (\"30 1 * * 1-5\"); times are UTC.",
            )
        })?),
    };
    let stale_after = match &s.stale_after {
        None => None,
        Some(text) => {
            let d = parse_duration(text).map_err(|e| {
                Failure::new(
                    ExitStatus::Usage,
                    format!("source '{}' has stale_after = \"{text}\": {e}.", s.name),
                )
                .with_remedy("Write durations like 90m, 26h or 8d.")
            })?;
            if d.is_zero() {
                return usage(
                    format!(
                        "source '{}' has stale_after = \"{text}\", which is zero.",
                        s.name
                    ),
                    "Use a positive duration such as 26h.",
                );
            }
            Some(d)
        }
    };
    if let Some(url) = &s.healthcheck_url {
        check_http_url(url, &format!("source '{}' healthcheck_url", s.name))?;
    }
    Ok((schedule, stale_after, s.healthcheck_url.clone()))
}

fn check_http_url(url: &str, what: &str) -> Result<()> {
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 10 {
        return usage(
            format!("{what} {} is not an http(s) URL.", crate::redact::url(url)),
            "Write a full URL such as https://hc-ping.com/UUID.",
        );
    }
    Ok(())
}

fn validate_notify(base: &Path, n: usize, raw: &FileNotify) -> Result<Notify> {
    let what = format!("[[notify]] number {n}");
    let min_severity = match raw.min_severity.as_deref() {
        None => crate::severity::Severity::Warning,
        Some(s) => crate::severity::Severity::parse(s).ok_or_else(|| {
            Failure::new(
                ExitStatus::Usage,
                format!("{what} has min_severity = \"{s}\"."),
            )
            .with_remedy("Use info, warning or critical.")
        })?,
    };
    let timeout = match &raw.timeout {
        None => Duration::from_secs(10),
        Some(t) => parse_duration(t).map_err(|e| {
            Failure::new(ExitStatus::Usage, format!("{what}: timeout: {e}."))
                .with_remedy("Write durations like 10s or 1m.")
        })?,
    };
    let kind = match raw.kind.as_str() {
        "webhook" => {
            if !raw.command.is_empty() {
                return usage(
                    format!("{what} is a webhook but has a command."),
                    "Remove command, or set kind = \"command\".",
                );
            }
            let url = match (&raw.url, &raw.url_env, &raw.url_file) {
                (Some(u), None, None) => {
                    check_http_url(u, &format!("{what} url"))?;
                    WebhookUrl::Inline(u.clone())
                }
                (None, Some(e), None) => WebhookUrl::Secret(Secret::Env(e.clone())),
                (None, None, Some(f)) => WebhookUrl::Secret(Secret::File(resolve_secret_file(base, f))),
                (None, None, None) => {
                    return usage(
                        format!("{what} is a webhook without a url."),
                        "Add url = \"https://hooks.example/...\" (or url_env / url_file when the URL holds a secret).",
                    )
                }
                _ => return usage(format!("{what} has more than one of url, url_env and url_file."), "Keep exactly one."),
            };
            let slack = match raw.format.as_deref() {
                None | Some("json") => false,
                Some("slack") => true,
                Some(other) => {
                    return usage(
                        format!("{what} has format = \"{other}\"."),
                        "Use format = \"json\" (default) or \"slack\".",
                    )
                }
            };
            NotifyKind::Webhook { url, slack }
        }
        "command" => {
            if raw.command.is_empty() {
                return usage(
                    format!("{what} is a command notifier without a command."),
                    "Add command = [\"/usr/local/bin/notify\", \"arg\"] (an argv list; the alert is in VAULTCTL_ALERT_* variables).",
                );
            }
            if raw.url.is_some()
                || raw.url_env.is_some()
                || raw.url_file.is_some()
                || raw.format.is_some()
            {
                return usage(
                    format!("{what} is a command notifier but has url or format."),
                    "Remove them, or set kind = \"webhook\".",
                );
            }
            NotifyKind::Command {
                argv: raw.command.clone(),
            }
        }
        other => {
            return usage(
                format!("{what} has an unknown kind \"{other}\"."),
                "Supported kinds: webhook, command.",
            )
        }
    };
    Ok(Notify {
        kind,
        min_severity,
        timeout,
    })
}

/// Names end up in object names, file names and tables: keep them plain.
pub fn validate_name(name: &str, what: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if !ok {
        return usage(
            format!("the {what} name '{name}' is not allowed."),
            "Use 1 to 64 characters: letters, digits, '-', '_' and '.', not starting with '.'.",
        );
    }
    Ok(())
}

/// A PostgreSQL source's url, parsed: present, valid and without a
/// password. `kind` names the source kind, `add` is the remedy when the url
/// is missing and `form` the shape of a valid url.
fn source_url(
    s: &FileSource,
    kind: &str,
    add: &str,
    form: &str,
) -> Result<(String, tokio_postgres::Config)> {
    let Some(url) = s.url.clone() else {
        return usage(
            format!("source '{}' of kind {kind} has no url.", s.name),
            add,
        );
    };
    let parsed: tokio_postgres::Config = url.parse().map_err(|e| {
        Failure::new(
            ExitStatus::Usage,
            format!(
                "source '{}' has an invalid url: {}.",
                s.name,
                crate::redact::conninfo_error(&e)
            ),
        )
        .with_remedy(format!("Write {form}."))
    })?;
    if parsed.get_password().is_some() {
        return usage(
            format!("source '{}' has a password in its url.", s.name),
            "Remove it from the url and use password_file, PGPASSFILE or PGPASSWORD instead: a password in the config ends up in logs and process lists.",
        );
    }
    Ok((url, parsed))
}

fn validate_postgres(base: &Path, s: &FileSource) -> Result<PostgresSpec> {
    let (url, parsed) = source_url(
        s,
        "postgres",
        "Add url = \"postgresql://backup@127.0.0.1:5432/app\" (no password in it).",
        "postgresql://USER@HOST:PORT/DATABASE",
    )?;
    if parsed.get_dbname().is_none() {
        return usage(
            format!("source '{}' names no database in its url.", s.name),
            "Write postgresql://USER@HOST:PORT/DATABASE.",
        );
    }
    if !s.paths.is_empty() || !s.command.is_empty() || s.format.is_some() {
        return usage(
            format!(
                "source '{}' of kind postgres has paths, command or format.",
                s.name
            ),
            "Those keys belong to files and command sources; remove them.",
        );
    }
    let bin_dir = s.pg_bin_dir.as_ref().map(|d| resolve(base, d));
    let tenants = match &s.tenants {
        Some(t) => {
            for (k, v) in [("table", &t.table), ("key", &t.key), ("column", &t.column)] {
                if v.trim().is_empty() {
                    return usage(
                        format!("source '{}': [source.tenants] {k} is empty.", s.name),
                        "Name the tenants table, its key and the tenant column.",
                    );
                }
            }
            Some(TenantSpec {
                table: t.table.clone(),
                key: t.key.clone(),
                column: t.column.clone(),
            })
        }
        None => None,
    };
    Ok(PostgresSpec {
        url,
        password_file: s
            .password_file
            .as_ref()
            .map(|p| resolve_secret_file(base, p)),
        pg_dump: pg_program(
            s.pg_dump.as_deref().map(|p| resolve(base, p)).as_deref(),
            bin_dir.as_deref(),
            "pg_dump",
        ),
        psql: pg_program(
            s.psql.as_deref().map(|p| resolve(base, p)).as_deref(),
            bin_dir.as_deref(),
            "psql",
        ),
        tenants,
    })
}

fn validate_physical(base: &Path, s: &FileSource) -> Result<PhysicalSpec> {
    let (url, _) = source_url(
        s,
        "postgres-physical",
        "Add url = \"postgresql://replicator@127.0.0.1:5432/postgres\" (a role with REPLICATION, no password in it).",
        "postgresql://USER@HOST:PORT/postgres",
    )?;
    if !s.paths.is_empty()
        || !s.command.is_empty()
        || s.format.is_some()
        || s.tenants.is_some()
        || s.pg_dump.is_some()
        || s.psql.is_some()
    {
        return usage(
            format!(
                "source '{}' of kind postgres-physical has paths, command, format, tenants, pg_dump or psql.",
                s.name
            ),
            "A physical source takes url, password_file and pg_bin_dir only; remove the others.",
        );
    }
    Ok(PhysicalSpec {
        url,
        password_file: s
            .password_file
            .as_ref()
            .map(|p| resolve_secret_file(base, p)),
        pg_bin_dir: s.pg_bin_dir.as_ref().map(|d| resolve(base, d)),
    })
}

fn validate_target(base: &Path, t: &FileTarget) -> Result<Target> {
    validate_name(&t.name, "target")?;
    let location = if let Some(path) = t.url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return usage(
                format!(
                    "target '{}' has url \"{}\", which is not an absolute file URL.",
                    t.name, t.url
                ),
                "Write file:///absolute/path (three slashes).",
            );
        }
        Location::Local {
            path: PathBuf::from(path),
        }
    } else if let Some(rest) = t.url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return usage(
                format!("target '{}' has no bucket in \"{}\".", t.name, t.url),
                "Write s3://bucket/prefix.",
            );
        }
        let secret = |env: &Option<String>, file: &Option<PathBuf>| -> Option<Secret> {
            env.clone().map(Secret::Env).or_else(|| {
                file.as_ref()
                    .map(|f| Secret::File(resolve_secret_file(base, f)))
            })
        };
        let provider = match t.provider.as_deref() {
            None => Provider::Generic,
            Some(p) => Provider::parse(p).ok_or_else(|| {
                Failure::new(
                    ExitStatus::Usage,
                    format!(
                        "target '{}' has provider = \"{p}\", which vaultctl does not know.",
                        t.name
                    ),
                )
                .with_remedy("Use aws, r2, b2, minio or generic (any other S3-compatible store).")
            })?,
        };
        if provider.needs_endpoint() && t.endpoint.is_none() {
            return usage(
                format!("target '{}' has provider = \"{}\" but no endpoint.", t.name, provider.name()),
                "Set endpoint: R2 https://ACCOUNT_ID.r2.cloudflarestorage.com, B2 https://s3.REGION.backblazeb2.com, MinIO your server's URL.",
            );
        }
        Location::S3 {
            place: crate::storage::S3Place {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
                endpoint: t.endpoint.clone(),
                region: t
                    .region
                    .clone()
                    .or_else(|| provider.default_region(t.endpoint.as_deref()))
                    .unwrap_or_else(|| "us-east-1".into()),
                path_style: t
                    .path_style
                    .unwrap_or(provider.default_path_style(t.endpoint.is_some())),
                allow_http: t.allow_http,
            },
            provider,
            access_key_id: secret(&t.access_key_id_env, &t.access_key_id_file),
            secret_access_key: secret(&t.secret_access_key_env, &t.secret_access_key_file),
            session_token_env: t.session_token_env.clone(),
        }
    } else {
        return usage(
            format!(
                "target '{}' has an unsupported url {}.",
                t.name,
                crate::redact::url(&t.url)
            ),
            "Supported: file:///path and s3://bucket/prefix (with endpoint for R2, B2 and other S3-compatible stores).",
        );
    };
    if let Location::S3 {
        place:
            crate::storage::S3Place {
                endpoint: Some(e),
                allow_http: false,
                ..
            },
        ..
    } = &location
    {
        if e.starts_with("http://") {
            return usage(
                format!(
                    "target '{}' uses the plain-HTTP endpoint {} without allow_http = true.",
                    t.name,
                    crate::redact::url(e)
                ),
                "Use https, or set allow_http = true only for a test server on 127.0.0.1.",
            );
        }
    }
    Ok(Target {
        name: t.name.clone(),
        location,
        max_retries: t.max_retries.unwrap_or(5),
        retry_timeout: parse_duration_opt(&t.retry_timeout, Duration::from_secs(120), &t.name)?,
        request_timeout: parse_duration_opt(&t.request_timeout, Duration::from_secs(300), &t.name)?,
        retention: t
            .retention
            .as_ref()
            .map(|r| validate_retention(&t.name, r))
            .transpose()?,
    })
}

fn validate_retention(target: &str, r: &FileRetention) -> Result<crate::settings::Policy> {
    for (key, v) in [
        ("keep_last", r.keep_last),
        ("keep_hourly", r.keep_hourly),
        ("keep_daily", r.keep_daily),
        ("keep_weekly", r.keep_weekly),
        ("keep_monthly", r.keep_monthly),
        ("keep_yearly", r.keep_yearly),
    ] {
        if v == Some(0) {
            return usage(
                format!("target '{target}': retention {key} = 0 keeps nothing by that rule."),
                "Leave the key out instead of setting it to 0, or use a count of at least 1.",
            );
        }
    }
    let keep_within = match &r.keep_within {
        None => None,
        Some(s) => Some(parse_duration(s).map_err(|e| {
            Failure::new(
                ExitStatus::Usage,
                format!("target '{target}': retention keep_within: {e}."),
            )
            .with_remedy("Write durations like 26h, 30d or 52w.")
        })?),
    };
    let policy = crate::settings::Policy {
        keep_last: r.keep_last,
        keep_hourly: r.keep_hourly,
        keep_daily: r.keep_daily,
        keep_weekly: r.keep_weekly,
        keep_monthly: r.keep_monthly,
        keep_yearly: r.keep_yearly,
        keep_within,
        keep_tags: r.keep_tags.clone(),
    };
    if policy.is_empty() {
        return usage(
            format!("target '{target}' has an empty [target.retention] table, which would remove every backup but the newest of each source."),
            "Set at least one of keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within or keep_tags, or remove the table to keep everything.",
        );
    }
    Ok(policy)
}

fn parse_duration_opt(v: &Option<String>, default: Duration, target: &str) -> Result<Duration> {
    match v {
        None => Ok(default),
        Some(s) => parse_duration(s).map_err(|e| {
            Failure::new(ExitStatus::Usage, format!("target '{target}': {e}"))
                .with_remedy("Write durations like 30s, 5m, 26h or 30d.")
                .into()
        }),
    }
}

pub use crate::clock::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_env_is_read_into_the_config() {
        use crate::settings::DEFAULT_WRITER_WAIT;
        let mut c = embedded_default();
        assert!(!c.clock.is_fixed());
        assert_eq!(c.lock_timing.writer_wait(), DEFAULT_WRITER_WAIT);
        apply_runtime_env(&mut c, |k| match k {
            "VAULTCTL_NOW" => Some("2026-11-27T02:00:00Z".into()),
            "VAULTCTL_LOCK_WAIT" => Some("2s".into()),
            _ => None,
        });
        assert_eq!(c.clock.now_str(), "2026-11-27T02:00:00.000Z");
        assert_eq!(c.lock_timing.writer_wait(), Duration::from_secs(2));
        // Values that do not parse leave the defaults.
        let mut d = embedded_default();
        apply_runtime_env(&mut d, |_| Some("soon".into()));
        assert!(!d.clock.is_fixed());
        assert_eq!(d.lock_timing.writer_wait(), DEFAULT_WRITER_WAIT);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86400)
        );
        assert_eq!(
            parse_duration(" 1d2h3m4s ").unwrap(),
            Duration::from_secs(86400 + 7200 + 184)
        );
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1hm").is_err());
        // Only the documented syntax, though humantime takes more.
        assert!(parse_duration("1 hour").is_err());
        assert!(parse_duration("100ms").is_err());
        assert!(parse_duration("1y").is_err());
        // Overflow is an error, not a panic.
        assert!(parse_duration("99999999999999999999w").is_err());
        assert!(parse_duration("9999999999999999w").is_err());
    }

    #[test]
    fn acceptance_keys_parse() {
        let text = r#"
catalog = "/var/lib/vaultctl/catalog.db"
[keys]
recipients = ["age1xyz"]
identity_file = "/etc/vaultctl/identity.txt"
[[target]]
name = "local"
url = "file:///var/backups/vaultctl"
[[target]]
name = "r2"
url = "s3://company-backups/vaultctl"
endpoint = "https://ACCOUNT.r2.cloudflarestorage.com"
region = "auto"
access_key_id_env = "R2_ACCESS_KEY_ID"
secret_access_key_env = "R2_SECRET_ACCESS_KEY"
allow_http = false
[[source]]
name = "app-config"
kind = "files"
paths = ["/etc/app"]
[[source]]
name = "nightly-dump"
kind = "command"
command = ["sh", "-c", "pg_dumpall --globals-only"]
"#;
        let raw: FileConfig = toml::from_str(text).unwrap();
        let c = validate(raw, Origin::File("/etc/vaultctl/config.toml".into())).unwrap();
        assert_eq!(c.targets.len(), 2);
        match &c.targets[1].location {
            Location::S3 {
                place:
                    crate::storage::S3Place {
                        bucket,
                        prefix,
                        path_style,
                        region,
                        ..
                    },
                ..
            } => {
                assert_eq!(bucket, "company-backups");
                assert_eq!(prefix, "vaultctl");
                assert!(*path_style);
                assert_eq!(region, "auto");
            }
            _ => panic!("expected s3"),
        }
        assert_eq!(
            c.keys.dedup_key_file,
            PathBuf::from("/etc/vaultctl/dedup.key")
        );
        assert_eq!(c.sources[1].spec.kind(), "command");
    }

    #[test]
    fn physical_sources_take_only_their_keys() {
        let text = "[[target]]\nname = \"l\"\nurl = \"file:///tmp/x\"\n[[source]]\nname = \"c\"\nkind = \"postgres-physical\"\nurl = \"postgresql://r@h/postgres\"\npg_dump = \"/x\"\n";
        let raw: FileConfig = toml::from_str(text).unwrap();
        assert!(validate(raw, Origin::Embedded).is_err());
        let raw: FileConfig =
            toml::from_str(&text.replace("pg_dump = \"/x\"\n", "password_file = \"pw\"\n"))
                .unwrap();
        let c = validate(raw, Origin::Embedded).unwrap();
        assert_eq!(c.sources[0].spec.kind(), "postgres-physical");
        let raw: FileConfig = toml::from_str(
            &text
                .replace("pg_dump = \"/x\"\n", "")
                .replace("r@h", "r:pw@h"),
        )
        .unwrap();
        assert!(validate(raw, Origin::Embedded).is_err());
    }

    #[test]
    fn example_config_is_valid() {
        let raw: FileConfig = toml::from_str(include_str!("../config.example.toml")).unwrap();
        let c = validate(raw, Origin::File("/etc/vaultctl/config.toml".into())).unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.sources.len(), 4);
        assert_eq!(c.wal_compression_level, 1);
        match &c.sources[3].spec {
            SourceSpec::PostgresPhysical(p) => {
                assert_eq!(p.url, "postgresql://replicator@127.0.0.1:5432/postgres");
                assert_eq!(
                    p.program("pg_basebackup"),
                    PathBuf::from("/usr/lib/postgresql/15/bin/pg_basebackup")
                );
            }
            _ => panic!("expected postgres-physical"),
        }
        match &c.sources[2].spec {
            SourceSpec::Postgres(p) => {
                assert_eq!(
                    p.pg_dump,
                    PathBuf::from("/usr/lib/postgresql/15/bin/pg_dump")
                );
                assert_eq!(p.tenants.as_ref().unwrap().column, "tenant_id");
            }
            _ => panic!("expected postgres"),
        }
        assert_eq!(c.notify.len(), 2);
        assert!(c.metrics_textfile.is_some());
        assert!(c.sources[0].schedule.is_some());
        let drill = c.sources[2].drill.as_ref().unwrap();
        assert_eq!(drill.max_age(), Some(Duration::from_secs(8 * 86400)));
        assert!(drill
            .scratch_db
            .as_deref()
            .unwrap()
            .ends_with("/vaultctl_drill_db"));
        let v = c.verify.as_ref().unwrap();
        assert_eq!(v.mode, VerifyMode::Sample(5.0));
        assert_eq!(v.targets, ["local", "r2"]);
        assert_eq!(v.max_age(), Some(Duration::from_secs(26 * 3600)));
        assert_eq!(v.window, DEFAULT_VERIFY_WINDOW);
    }

    #[test]
    fn verify_and_drill_max_age_default_from_the_schedule() {
        let text = r#"
[[target]]
name = "local"
url = "file:///var/backups/vaultctl"
[[source]]
name = "db"
kind = "postgres"
url = "postgresql://backup@127.0.0.1:5432/app"
[source.drill]
schedule = "weekly"
[verify]
schedule = "hourly"
mode = "sample=2.5%"
"#;
        let c = validate(toml::from_str(text).unwrap(), Origin::Embedded).unwrap();
        let v = c.verify.unwrap();
        assert_eq!(v.mode, VerifyMode::Sample(2.5));
        assert_eq!(v.targets, ["local"], "default: every target");
        assert_eq!(v.max_age(), Some(Duration::from_secs(2 * 3600)));
        let d = c.sources[0].drill.as_ref().unwrap();
        assert_eq!(d.max_age(), Some(Duration::from_secs((7 * 24 + 14) * 3600)));
        assert_eq!(d.scratch_db, None);
        // No schedule and no max_age: nothing to be stale against.
        let c = validate(
            toml::from_str(
                &text
                    .replace("schedule = \"hourly\"\n", "")
                    .replace("mode = \"sample=2.5%\"", "mode = \"read-data\""),
            )
            .unwrap(),
            Origin::Embedded,
        )
        .unwrap();
        assert_eq!(c.verify.as_ref().unwrap().max_age(), None);
        assert_eq!(c.verify.unwrap().mode, VerifyMode::ReadData);
    }

    #[test]
    fn postgres_acceptance_keys_parse() {
        let text = r#"
[[target]]
name = "local"
url = "file:///var/backups/vaultctl"
[[source]]
name = "db"
kind = "postgres"
url = "postgresql://backup@127.0.0.1:5432/app"   # no password here
password_file = "/etc/vaultctl/pg-password"      # optional; PGPASSFILE and PGPASSWORD in the environment also work
pg_bin_dir = "/usr/lib/postgresql/15/bin"         # optional; else PATH
[source.tenants]
table = "tenants"      # the tenants table
key = "id"             # its identifying column
column = "tenant_id"   # the column every tenant-owned table carries
"#;
        let raw: FileConfig = toml::from_str(text).unwrap();
        let c = validate(raw, Origin::File("/etc/vaultctl/config.toml".into())).unwrap();
        let SourceSpec::Postgres(p) = &c.sources[0].spec else {
            panic!("expected postgres")
        };
        assert_eq!(p.url, "postgresql://backup@127.0.0.1:5432/app");
        assert_eq!(
            p.password_file.as_deref(),
            Some(Path::new("/etc/vaultctl/pg-password"))
        );
        assert_eq!(p.psql, PathBuf::from("/usr/lib/postgresql/15/bin/psql"));
        assert_eq!(
            p.tenants,
            Some(TenantSpec {
                table: "tenants".into(),
                key: "id".into(),
                column: "tenant_id".into()
            })
        );
        let with_password = text.replace("backup@", "backup:secret@");
        let err = validate(toml::from_str(&with_password).unwrap(), Origin::Embedded).unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
    }

    #[test]
    fn operations_acceptance_keys_parse() {
        let text = r#"
metrics_textfile = "/var/lib/node_exporter/textfile/vaultctl.prom"
[[target]]
name = "local"
url = "file:///var/backups/vaultctl"
[[source]]
name = "db"
kind = "command"
command = ["pg_dumpall"]
schedule = "*-*-* 02:00:00"
stale_after = "26h"
healthcheck_url = "https://hc.example/ping/UUID"
[[notify]]
kind = "webhook"
url = "https://hooks.example/x"
format = "json"
min_severity = "warning"
[[notify]]
kind = "command"
command = ["notify-send", "x"]
"#;
        let c = validate(
            toml::from_str(text).unwrap(),
            Origin::File("/etc/vaultctl/config.toml".into()),
        )
        .unwrap();
        assert_eq!(
            c.metrics_textfile,
            Some(PathBuf::from(
                "/var/lib/node_exporter/textfile/vaultctl.prom"
            ))
        );
        assert_eq!(
            c.sources[0].stale_after,
            Some(Duration::from_secs(26 * 3600))
        );
        assert_eq!(
            c.sources[0].schedule.as_ref().unwrap().text,
            "*-*-* 02:00:00"
        );
        assert_eq!(
            c.sources[0].healthcheck_url.as_deref(),
            Some("https://hc.example/ping/UUID")
        );
        match &c.notify[0].kind {
            NotifyKind::Webhook { url, slack: false } => {
                assert_eq!(url.get().unwrap(), "https://hooks.example/x")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.notify[1].min_severity, crate::severity::Severity::Warning);
        let bad = |extra: &str, want: &str| {
            let t = format!("[[target]]\nname = \"l\"\nurl = \"file:///x\"\n{extra}");
            let err = validate(toml::from_str(&t).unwrap(), Origin::Embedded)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{extra}: {err}");
        };
        bad("[[notify]]\nkind = \"webhook\"\n", "without a url");
        bad(
            "[[notify]]\nkind = \"webhook\"\nurl = \"https://x.example/a\"\nformat = \"teams\"\n",
            "format = \"teams\"",
        );
        bad(
            "[[notify]]\nkind = \"command\"\nmin_severity = \"loud\"\ncommand = [\"x\"]\n",
            "min_severity = \"loud\"",
        );
        bad("[[notify]]\nkind = \"pager\"\n", "unknown kind \"pager\"");
        bad(
            "[[notify]]\nkind = \"webhook\"\nurl = \"https://x.example/a\"\nurl_env = \"HOOK\"\n",
            "more than one of url",
        );
        bad("[[source]]\nname = \"s\"\nkind = \"files\"\npaths = [\"/x\"]\nschedule = \"sometimes\"\n", "schedule = \"sometimes\"");
        bad(
            "[[source]]\nname = \"s\"\nkind = \"files\"\npaths = [\"/x\"]\nstale_after = \"0h\"\n",
            "zero",
        );
        bad("[[source]]\nname = \"s\"\nkind = \"files\"\npaths = [\"/x\"]\nhealthcheck_url = \"hc.example\"\n", "not an http(s) URL");
    }

    #[test]
    fn retention_parses_and_validates() {
        let text = r#"
[[target]]
name = "local"
url = "file:///var/backups/vaultctl"
[target.retention]
keep_within = "30d"
keep_daily = 7
keep_tags = ["release"]
[[target]]
name = "cloud"
url = "file:///mnt/cloud"
"#;
        let c = validate(
            toml::from_str(text).unwrap(),
            Origin::File("/etc/vaultctl/config.toml".into()),
        )
        .unwrap();
        let p = c.targets[0].retention.as_ref().unwrap();
        assert_eq!(p.keep_within, Some(Duration::from_secs(30 * 86400)));
        assert_eq!(p.keep_daily, Some(7));
        assert_eq!(p.keep_tags, vec!["release".to_string()]);
        assert!(c.targets[1].retention.is_none());
        let bad = |extra: &str| {
            let t = format!(
                "[[target]]\nname = \"l\"\nurl = \"file:///x\"\n[target.retention]\n{extra}\n"
            );
            match toml::from_str::<FileConfig>(&t) {
                Err(_) => true,
                Ok(raw) => validate(raw, Origin::File("/c.toml".into())).is_err(),
            }
        };
        assert!(bad(""));
        assert!(bad("keep_last = 0"));
        assert!(bad("keep_within = \"30\""));
        assert!(bad("keep_dayly = 3"));
        assert!(!bad("keep_last = 3"));
    }

    #[test]
    fn unknown_key_is_an_error() {
        assert!(toml::from_str::<FileConfig>("catalgo = \"x\"").is_err());
    }

    #[test]
    fn provider_presets_set_addressing_region_and_conditional_writes() {
        let target = |extra: &str| -> Result<Target> {
            let text = format!("[[target]]\nname = \"t\"\nurl = \"s3://b/p\"\n{extra}");
            let raw: FileConfig = toml::from_str(&text).unwrap();
            validate(raw, Origin::File("/etc/vaultctl/config.toml".into()))
                .map(|c| c.targets[0].clone())
        };
        let s3 = |t: Target| match t.location {
            Location::S3 {
                place, provider, ..
            } => (place.region, place.path_style, provider),
            _ => panic!("expected s3"),
        };
        assert_eq!(
            s3(target("provider = \"aws\"\nregion = \"eu-west-1\"").unwrap()),
            ("eu-west-1".into(), false, Provider::Aws)
        );
        assert_eq!(
            s3(
                target("provider = \"r2\"\nendpoint = \"https://acct.r2.cloudflarestorage.com\"")
                    .unwrap()
            ),
            ("auto".into(), true, Provider::R2)
        );
        let b2 = s3(target(
            "provider = \"b2\"\nendpoint = \"https://s3.us-west-004.backblazeb2.com\"",
        )
        .unwrap());
        assert_eq!(b2, ("us-west-004".into(), true, Provider::B2));
        assert!(!b2.2.conditional_writes() && Provider::R2.conditional_writes());
        assert!(
            s3(target("provider = \"minio\"\nendpoint = \"https://minio.lan:9000\"").unwrap()).1
        );
        // Explicit keys win over the preset.
        assert!(
            !s3(
                target("provider = \"minio\"\nendpoint = \"https://m\"\npath_style = false")
                    .unwrap()
            )
            .1
        );
        // No provider: path-style only with an endpoint (as before).
        assert_eq!(
            s3(target("").unwrap()),
            ("us-east-1".into(), false, Provider::Generic)
        );
        let e = target("provider = \"r2\"").unwrap_err().to_string();
        assert!(e.contains("no endpoint"), "{e}");
        let e = target("provider = \"wasabi\"").unwrap_err().to_string();
        assert!(e.contains("does not know"), "{e}");
    }
}
