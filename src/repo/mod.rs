//! The repository: format, keys, and opening or creating it on every target.
//!
//! Every configured target holds a complete repository with the same id and
//! keys, so any one of them alone is enough to restore.

pub mod backup;
pub mod chunker;
pub mod claims;
pub mod extsort;
pub mod format;
pub mod ids;
pub mod index;
pub mod keys;
pub mod lock;
pub mod manifest;
pub mod ordered;
pub mod pack;
pub mod prune;
pub mod restore;
pub mod retention;
pub mod spill;
pub mod sync;
pub mod synth;
pub mod verified;
pub mod verify;
pub mod wal;

use anyhow::{Context, Result};
use bytes::Bytes;

use crate::config::{Config, Origin};
use crate::error::{fail, ExitStatus, Failure};
use crate::storage::Store;
use format::{RepoConfig, CONFIG_OBJECT, DEDUP_KEY_OBJECT, FORMAT_NAME, FORMAT_VERSION};
use keys::{DedupKey, Identity, Recipient};

/// An opened repository: the targets that answered, and the keys.
pub struct Repository {
    pub config: RepoConfig,
    /// Targets holding this repository, in config order.
    pub stores: Vec<Store>,
    /// Targets that could not be opened, with why.
    pub unavailable: Vec<(String, String)>,
    pub dedup: DedupKey,
    pub recipients: Vec<Recipient>,
    identity_file: Option<std::path::PathBuf>,
    /// The stale period of the locks this process takes (`lock_stale_after`).
    pub lock_timing: lock::LockTiming,
    /// Who hears of damaged objects found on the way.
    notifier: std::sync::Arc<dyn Notifier>,
}

/// An index entry with the slot of its pack, in reading order
/// ([`Repository::sync_index`]'s external sort): sorts by blob id, then
/// by the order its pack was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SlotEntry {
    id: pack::BlobId,
    slot: u32,
    offset: u32,
    stored_len: u32,
    raw_len: u32,
    flags: u8,
}

impl extsort::Record for SlotEntry {
    const SIZE: usize = 49;
    fn write_to(&self, out: &mut [u8]) {
        out[..32].copy_from_slice(&self.id);
        for (i, n) in [self.slot, self.offset, self.stored_len, self.raw_len]
            .into_iter()
            .enumerate()
        {
            out[32 + i * 4..36 + i * 4].copy_from_slice(&n.to_be_bytes());
        }
        out[48] = self.flags;
    }
    fn read_from(bytes: &[u8]) -> Self {
        let n = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[32 + i * 4..36 + i * 4]);
            u32::from_be_bytes(b)
        };
        let mut id = [0u8; 32];
        id.copy_from_slice(&bytes[..32]);
        SlotEntry {
            id,
            slot: n(0),
            offset: n(1),
            stored_len: n(2),
            raw_len: n(3),
            flags: bytes[48],
        }
    }
}

/// What [`Repository::sync_index`] did.
#[derive(Debug, Default)]
pub struct IndexSync {
    /// Index objects read into the catalog.
    pub added: usize,
    /// Index objects skipped because they are damaged or unreadable (one
    /// message each, naming the object).
    pub skipped: Vec<String>,
}

/// Where a repository reports the objects it finds damaged while it works
/// (an index object it skips, after logging a warning). `ops` records the
/// `repository_damaged` alert in the catalog and notifies
/// ([`Repository::with_notifier`]); by default nothing more than the warning
/// happens (the repository knows no catalog).
pub trait Notifier: Send + Sync {
    fn damaged(&self, target: &str, message: &str);
}

/// The default [`Notifier`]: the warning in the log is all.
struct LogOnly;

impl Notifier for LogOnly {
    fn damaged(&self, _target: &str, _message: &str) {}
}

/// What `init` did on each target.
#[derive(Debug, serde::Serialize)]
pub struct InitReport {
    pub repo_id: String,
    pub targets: Vec<(String, String)>,
    pub dedup_key_file: String,
    pub created_dedup_key: bool,
}

/// Whether a process of this host still runs: a backup row or a lock
/// left by a killed process must not block anyone forever.
pub fn process_alive(pid: i32) -> bool {
    // Signal 0 only checks for existence; EPERM: it exists, as another user.
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// A test hook, in debug builds only (release builds compile it to
/// nothing): when `VAULTCTL_TEST_PAUSE_DIR` was set at startup
/// ([`crate::settings::Environment`]), creates
/// `<dir>/<point>.reached` and waits until `<dir>/<point>.go` exists, so a
/// race test can freeze the process at an exact point (tests/adversarial).
pub fn test_pause(point: &str) {
    #[cfg(debug_assertions)]
    if let Some(dir) = &crate::settings::environment().test_pause_dir {
        let _ = std::fs::write(dir.join(format!("{point}.reached")), b"");
        while !dir.join(format!("{point}.go")).exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Recipients from the config, or derived from the identity when the config
/// lists none (the embedded default).
pub(crate) fn recipients(config: &Config) -> Result<Vec<Recipient>> {
    let mut out = Vec::new();
    for r in &config.keys.recipients {
        out.push(Recipient::parse(r)?);
    }
    if out.is_empty() {
        if let Some(path) = config.keys.identity_file.as_ref().filter(|p| p.exists()) {
            for id in keys::load_identities(path)? {
                out.extend(id.to_recipient());
            }
        }
    }
    if out.is_empty() {
        return fail(
            ExitStatus::Usage,
            "no recipients are configured, so backups could not be encrypted.",
            "Add keys.recipients = [\"age1…\"] (from `vaultctl key generate`) to the config.",
        );
    }
    Ok(out)
}

/// For the embedded default: creates the identity on first use and says where.
pub fn ensure_default_identity(config: &Config) -> Result<()> {
    if config.origin != Origin::Embedded {
        return Ok(());
    }
    let path = config
        .keys
        .identity_file
        .clone()
        .expect("embedded default has an identity path");
    if !path.exists() {
        let public = keys::generate_identity(&path)?;
        eprintln!(
            "vaultctl: created a new identity at {} (public key {public}).\n\
             vaultctl: this key is the ONLY way to read your backups: copy it somewhere safe, off this machine. Losing it loses the backups.",
            path.display()
        );
    }
    Ok(())
}

pub fn read_repo_config(store: &Store) -> Result<Option<RepoConfig>> {
    match store.get(CONFIG_OBJECT)? {
        None => Ok(None),
        Some(b) => RepoConfig::parse(&b)
            .map(Some)
            .with_context(|| format!("target '{}' ({})", store.name, store.display)),
    }
}

fn load_identities_of(config: &Config) -> Result<Option<Vec<Identity>>> {
    match &config.keys.identity_file {
        Some(p) if p.exists() => Ok(Some(keys::load_identities(p)?)),
        _ => Ok(None),
    }
}

/// Loads the dedup key: from its file, else (with the identity) from the
/// repository's `keys/dedup.age`. Checks it against the repository.
fn load_dedup_key(config: &Config, repo: &RepoConfig, stores: &[Store]) -> Result<DedupKey> {
    let path = &config.keys.dedup_key_file;
    let key = if path.exists() {
        DedupKey::load(path)?
    } else if let Some(ids) = load_identities_of(config)? {
        let mut found = None;
        for s in stores {
            if let Some(b) = s.get(DEDUP_KEY_OBJECT)? {
                let plain = keys::decrypt(&ids, &b)?;
                let root: [u8; 32] = plain
                    .as_slice()
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("keys/dedup.age does not hold a 32-byte key"))?;
                found = Some(DedupKey::from_root(root));
                break;
            }
        }
        found.ok_or_else(|| anyhow::anyhow!("no target holds keys/dedup.age"))?
    } else {
        return fail(
            ExitStatus::Usage,
            format!("the dedup key file {} does not exist, and there is no identity to recover it from the repository.", path.display()),
            "Copy the dedup key from the host that ran `vaultctl init` (it is safe on write-only hosts), or set keys.identity_file.",
        );
    };
    if key.check_value() != repo.dedup_key_check {
        return fail(
            ExitStatus::Usage,
            format!("the dedup key in {} belongs to another repository than {}.", path.display(), repo.repo_id),
            "Use the dedup key of this repository (keys.dedup_key_file), or point the config at the right targets.",
        );
    }
    Ok(key)
}

/// The configuration of a new repository: a random id, these chunker
/// parameters, the dedup key's check value.
fn new_repo_config(key: &DedupKey, chunker: chunker::ChunkerParams) -> RepoConfig {
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    RepoConfig {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        repo_id: hex::encode(id),
        created_at: crate::clock::now_rfc3339(),
        chunker,
        dedup_key_check: key.check_value(),
    }
}

/// Writes a new repository's objects to a target: the key object first,
/// because a config without it would be a repository that a fresh machine
/// with only the identity cannot open.
fn write_repo_objects(s: &Store, key_bytes: &Bytes, config_bytes: &Bytes) -> Result<()> {
    s.put(DEDUP_KEY_OBJECT, key_bytes.clone())?;
    s.put(CONFIG_OBJECT, config_bytes.clone())
}

/// The keys of a repository opened over given stores (no config file).
pub struct RepoKeys {
    pub dedup: DedupKey,
    pub recipients: Vec<Recipient>,
    /// The age identity file, for reading contents (`None`: write-only).
    pub identity_file: Option<std::path::PathBuf>,
}

/// Creates the repository on every target (idempotent).
pub fn init(config: &Config) -> Result<InitReport> {
    ensure_default_identity(config)?;
    let recipients = recipients(config)?;
    let mut stores = Vec::new();
    let mut existing: Vec<(usize, RepoConfig)> = Vec::new();
    for t in &config.targets {
        let s = t.store_spec().and_then(|s| Store::open(&s, true))?;
        if let Some(rc) = read_repo_config(&s)? {
            existing.push((stores.len(), rc));
        }
        stores.push(s);
    }
    if let Some((_, first)) = existing.first() {
        if let Some((i, other)) = existing.iter().find(|(_, rc)| rc.repo_id != first.repo_id) {
            return fail(
                ExitStatus::Usage,
                format!(
                    "target '{}' already holds a different repository ({}) than target '{}' ({}).",
                    stores[*i].name, other.repo_id, stores[existing[0].0].name, first.repo_id
                ),
                "Every target must hold the same repository: empty the odd target or give it another prefix.",
            );
        }
    }
    let mut created_key = false;
    let (repo_config, dedup) = match existing.first() {
        Some((_, rc)) => {
            let holders: Vec<Store> = existing.iter().map(|(i, _)| stores[*i].clone()).collect();
            let key = load_dedup_key(config, rc, &holders)?;
            if !config.keys.dedup_key_file.exists() {
                key.save(&config.keys.dedup_key_file)?;
                created_key = true;
            }
            (rc.clone(), key)
        }
        None => {
            let key = if config.keys.dedup_key_file.exists() {
                DedupKey::load(&config.keys.dedup_key_file)?
            } else {
                let k = DedupKey::generate();
                k.save(&config.keys.dedup_key_file)?;
                created_key = true;
                k
            };
            (
                new_repo_config(&key, chunker::ChunkerParams::default()),
                key,
            )
        }
    };
    let config_bytes = Bytes::from(serde_json::to_vec_pretty(&repo_config)?);
    let key_bytes = Bytes::from(keys::encrypt(&recipients, dedup.root())?);
    let mut report = InitReport {
        repo_id: repo_config.repo_id.clone(),
        targets: Vec::new(),
        dedup_key_file: config.keys.dedup_key_file.display().to_string(),
        created_dedup_key: created_key,
    };
    for (i, s) in stores.iter().enumerate() {
        if existing.iter().any(|(j, _)| *j == i) {
            report
                .targets
                .push((s.name.clone(), "already initialized".into()));
            continue;
        }
        write_repo_objects(s, &key_bytes, &config_bytes)?;
        report.targets.push((s.name.clone(), "created".into()));
    }
    Ok(report)
}

impl Repository {
    /// Opens the repository on the configured targets (or only `only`).
    /// Targets that fail are listed in `unavailable`; at least one must work.
    pub fn open(config: &Config, only: Option<&str>) -> Result<Repository> {
        ensure_default_identity(config)?;
        if config.origin == Origin::Embedded {
            // First use of the embedded default creates its repository.
            let t = &config.targets[0];
            let s = t.store_spec().and_then(|s| Store::open(&s, true))?;
            if read_repo_config(&s)?.is_none() {
                init(config)?;
            }
        }
        let targets: Vec<_> = match only {
            Some(name) => vec![config.target(name)?],
            None => config.targets.iter().collect(),
        };
        let mut stores = Vec::new();
        let mut unavailable = Vec::new();
        let mut repo_config: Option<RepoConfig> = None;
        let mut first_error: Option<anyhow::Error> = None;
        for t in targets {
            let opened = t
                .store_spec()
                .and_then(|s| Store::open(&s, false))
                .and_then(|s| {
                    let rc = read_repo_config(&s)?;
                    Ok((s, rc))
                });
            match opened {
                Ok((s, Some(rc))) => {
                    if let Some(prev) = &repo_config {
                        if prev.repo_id != rc.repo_id {
                            return fail(
                                ExitStatus::Usage,
                                format!("target '{}' holds repository {}, but the other targets hold {}.", s.name, rc.repo_id, prev.repo_id),
                                "Every target must hold the same repository; fix the target's url or prefix.",
                            );
                        }
                    } else {
                        repo_config = Some(rc);
                    }
                    stores.push(s);
                }
                Ok((s, None)) => {
                    let e = Failure::new(
                        ExitStatus::RepoMissing,
                        format!("target '{}' ({}) holds no vaultctl repository.", s.name, s.display),
                    )
                    .with_remedy("Run `vaultctl init` to create it (or to copy the repository's keys to a new target).");
                    unavailable.push((s.name.clone(), e.to_string()));
                    first_error.get_or_insert(e.into());
                }
                Err(e) => {
                    unavailable.push((t.name.clone(), crate::error::paragraph(&e)));
                    first_error.get_or_insert(e);
                }
            }
        }
        let Some(repo_config) = repo_config else {
            return Err(first_error.unwrap_or_else(|| anyhow::anyhow!("no target configured")));
        };
        let dedup = load_dedup_key(config, &repo_config, &stores)?;
        Ok(Repository {
            config: repo_config,
            stores,
            unavailable,
            dedup,
            recipients: recipients(config)?,
            identity_file: config.keys.identity_file.clone(),
            lock_timing: config.lock_timing,
            notifier: std::sync::Arc::new(LogOnly),
        })
    }

    /// Creates a repository on `stores` (any `object_store` backend, see
    /// [`Store::from_object_store`]) with these keys and chunker
    /// parameters, and opens it: what `init` and `open` do, without a
    /// config file. Stores that already hold a repository must hold this
    /// one's keys (they are left as they are).
    pub fn init_stores(
        stores: Vec<Store>,
        repo_keys: RepoKeys,
        chunker: chunker::ChunkerParams,
        lock_timing: lock::LockTiming,
    ) -> Result<Repository> {
        let repo_config = match stores.iter().find_map(|s| read_repo_config(s).transpose()) {
            Some(rc) => rc?,
            None => new_repo_config(&repo_keys.dedup, chunker),
        };
        let config_bytes = Bytes::from(serde_json::to_vec_pretty(&repo_config)?);
        let key_bytes = Bytes::from(keys::encrypt(
            &repo_keys.recipients,
            repo_keys.dedup.root(),
        )?);
        for s in &stores {
            if read_repo_config(s)?.is_none() {
                write_repo_objects(s, &key_bytes, &config_bytes)?;
            }
        }
        Repository::from_stores(stores, repo_keys, lock_timing)
    }

    /// Opens the repository that `stores` hold with these keys, without a
    /// config file. Every store must hold it (the same repository id), and
    /// the dedup key must be this repository's.
    pub fn from_stores(
        stores: Vec<Store>,
        repo_keys: RepoKeys,
        lock_timing: lock::LockTiming,
    ) -> Result<Repository> {
        let mut repo_config: Option<RepoConfig> = None;
        for s in &stores {
            let Some(rc) = read_repo_config(s)? else {
                return Err(Failure::new(
                    ExitStatus::RepoMissing,
                    format!(
                        "target '{}' ({}) holds no vaultctl repository.",
                        s.name, s.display
                    ),
                )
                .with_remedy("Create it first (`vaultctl init`).")
                .into());
            };
            match &repo_config {
                Some(prev) if prev.repo_id != rc.repo_id => {
                    return fail(
                        ExitStatus::Usage,
                        format!(
                            "target '{}' holds repository {}, but the other targets hold {}.",
                            s.name, rc.repo_id, prev.repo_id
                        ),
                        "Every target must hold the same repository.",
                    )
                }
                Some(_) => {}
                None => repo_config = Some(rc),
            }
        }
        let Some(repo_config) = repo_config else {
            return fail(
                ExitStatus::Usage,
                "no target given.",
                "Pass at least one store.",
            );
        };
        if repo_keys.dedup.check_value() != repo_config.dedup_key_check {
            return fail(
                ExitStatus::Usage,
                format!(
                    "the dedup key belongs to another repository than {}.",
                    repo_config.repo_id
                ),
                "Use the dedup key of this repository.",
            );
        }
        Ok(Repository {
            config: repo_config,
            stores,
            unavailable: Vec::new(),
            dedup: repo_keys.dedup,
            recipients: repo_keys.recipients,
            identity_file: repo_keys.identity_file,
            lock_timing,
            notifier: std::sync::Arc::new(LogOnly),
        })
    }

    /// The same repository over its target `target` only (none if it has no
    /// such target).
    pub fn only(&self, target: &str) -> Repository {
        Repository {
            config: self.config.clone(),
            stores: self
                .stores
                .iter()
                .filter(|s| s.name == target)
                .cloned()
                .collect(),
            unavailable: Vec::new(),
            dedup: self.dedup.clone(),
            recipients: self.recipients.clone(),
            identity_file: self.identity_file.clone(),
            lock_timing: self.lock_timing,
            notifier: self.notifier.clone(),
        }
    }

    /// The same repository reporting damaged objects to `notifier`.
    pub fn with_notifier(self, notifier: std::sync::Arc<dyn Notifier>) -> Repository {
        Repository { notifier, ..self }
    }

    /// The age identities; reading contents without them fails with exit 12.
    pub fn identities(&self) -> Result<Vec<Identity>> {
        match &self.identity_file {
            Some(p) if p.exists() => keys::load_identities(p),
            Some(p) => fail(
                ExitStatus::Key,
                format!("reading backup contents needs the identity, and {} does not exist.", p.display()),
                "Restore and content verification need the private key (keys.identity_file or --identity); a write-only host can only back up and verify ciphertext.",
            ),
            None => fail(
                ExitStatus::Key,
                "reading backup contents needs an identity, and none is configured (this is a write-only host).",
                "Run the restore on a host that has the identity (keys.identity_file, or --identity FILE).",
            ),
        }
    }

    /// Makes the catalog's dedup index match every target's index objects:
    /// what another host wrote, or what a lost catalog forgot. An index
    /// object that is damaged or cannot be read (garbage planted in the
    /// bucket, a zstd bomb) is skipped with a warning and an alert: it only
    /// means less deduplication, never a failed backup.
    pub fn sync_index(&self, catalog: &mut dyn index::IndexStore) -> Result<IndexSync> {
        self.sync_index_on(catalog, &self.stores)
    }

    /// [`sync_index`](Self::sync_index) for some of the targets only.
    pub fn sync_index_on(
        &self,
        catalog: &mut dyn index::IndexStore,
        stores: &[Store],
    ) -> Result<IndexSync> {
        let mut added = 0;
        let mut skipped = Vec::new();
        for s in stores {
            let listed = s.list(format::INDEX_DIR)?;
            let names: std::collections::HashSet<&str> = listed
                .iter()
                .filter_map(|(n, _)| n.strip_prefix("index/"))
                .collect();
            // An index object the catalog read but the target no longer
            // holds means a prune wrote its replacement and deleted it (and
            // maybe packs): the catalog forgets it, and the packs only it
            // listed, once the replacements are read below. An object read
            // before the catalog recorded which packs it lists means
            // re-reading the whole target.
            let vanished: Vec<String> = catalog
                .index_objects_of(&s.name)?
                .into_iter()
                .filter(|known| !names.contains(known.as_str()))
                .collect();
            let reread = !vanished.is_empty() && !catalog.knows_index_packs(&s.name, &vanished)?;
            if reread {
                tracing::info!(
                    "target '{}' was pruned since the catalog last read it; re-reading its index",
                    s.name
                );
                catalog.drop_target_dedup(&s.name)?;
            }
            let (read, skip) = self.read_new_indexes(catalog, s, &listed)?;
            added += read;
            skipped.extend(skip);
            if !vanished.is_empty() && !reread {
                tracing::debug!(
                    "target '{}': {} index object(s) pruned since the catalog last read it; forgetting them",
                    s.name,
                    vanished.len()
                );
                catalog.forget_index_objects(&s.name, &vanished)?;
            }
        }
        Ok(IndexSync { added, skipped })
    }

    /// Reads the index objects of `s` (`listed`) the catalog has not read,
    /// and records them in one transaction. The entries go through an
    /// external sort and into the catalog in id order: B-tree inserts in
    /// order touch each page once, where one object at a time rewrites the
    /// whole id index per object. The entries of a pack the catalog already
    /// knows on this target (a prune rewrote the index object listing it)
    /// are recorded already and skipped. Returns how many objects were
    /// read, and one message per damaged object skipped.
    fn read_new_indexes(
        &self,
        catalog: &mut dyn index::IndexStore,
        s: &Store,
        listed: &[(String, u64)],
    ) -> Result<(usize, Vec<String>)> {
        let mut skipped = Vec::new();
        let mut objects: Vec<(String, Vec<u32>)> = Vec::new();
        let mut packs: Vec<String> = Vec::new();
        let mut entries = extsort::ExternalSorter::<SlotEntry>::new(extsort::RUN_LEN);
        for (name, _) in listed {
            let Some(short) = name.strip_prefix("index/") else {
                continue;
            };
            if !format::is_hex_name(short) || catalog.has_index_object(short, &s.name)? {
                continue;
            }
            let Some(bytes) = s.get(name)? else { continue };
            let decoded = if format::content_name(&bytes) != short {
                Err(anyhow::anyhow!("its bytes do not match its name"))
            } else {
                index::decode(&bytes, &self.dedup)
            };
            let decoded = match decoded {
                Ok(decoded) => decoded,
                Err(e) => {
                    let what = format!(
                        "index object {short} on target '{}' is damaged or not a vaultctl index ({}); it is skipped",
                        s.name,
                        crate::error::paragraph(&e)
                    );
                    tracing::warn!("{what}");
                    self.notifier.damaged(&s.name, &what);
                    skipped.push(what);
                    continue;
                }
            };
            let mut slots = Vec::with_capacity(decoded.len());
            for p in decoded {
                let slot = u32::try_from(packs.len())?;
                if !catalog.has_pack_on(&p.name, &s.name)? {
                    for e in p.entries {
                        entries.push(SlotEntry {
                            id: e.id,
                            slot,
                            offset: e.offset,
                            stored_len: e.stored_len,
                            raw_len: e.raw_len,
                            flags: e.flags,
                        })?;
                    }
                }
                slots.push(slot);
                packs.push(p.name);
            }
            objects.push((short.to_string(), slots));
        }
        if !objects.is_empty() {
            let mut sorted = entries.finish()?;
            catalog.add_sorted_index(&objects, &packs, &s.name, &mut || {
                Ok(sorted.next_record()?.map(|e| {
                    (
                        e.slot,
                        pack::PackEntry {
                            id: e.id,
                            flags: e.flags,
                            raw_len: e.raw_len,
                            stored_len: e.stored_len,
                            offset: e.offset,
                        },
                    )
                }))
            })?;
        }
        Ok((objects.len(), skipped))
    }
}
