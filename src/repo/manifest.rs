//! Manifests (snapshots): one object per backup, written last.
//!
//! A backup exists exactly when its manifest exists. The object has two
//! parts: a **header** sealed with the metadata key, holding only what
//! listing, retention and garbage collection need (so a write-only host can
//! do them), and a **body** encrypted to the age recipients, holding names,
//! notes, engine metadata and the ordered blob lists.
//!
//! ```text
//! "VCSNAP01", header length u32 LE, sealed(zstd(header JSON)), age(body JSON)
//! ```
//!
//! Version 2 binds the three together: the sealed header carries a keyed
//! BLAKE3 of the body's stored bytes (`body_mac`), the body carries the
//! header's id, source and kind, and readers check that the header's id is
//! the object's name. Whoever lacks the dedup key (the storage) can
//! therefore neither roll a name back to an older backup nor give a header
//! another body.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use std::cell::{Cell, RefCell};

use super::extsort::Sorted;
use super::format;
use super::keys::{DedupKey, Identity, Recipient};
use super::pack::BlobId;
use crate::error::{ExitStatus, Failure};
use crate::storage::Payload;

pub const MANIFEST_MAGIC: &[u8; 8] = b"VCSNAP01";

/// What retention, GC and `list` need; readable with the dedup key alone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub version: u32,
    pub id: String,
    pub source: String,
    pub kind: String,
    pub host: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Plaintext bytes of all artifacts.
    pub bytes: u64,
    /// Stored bytes this backup added to the repository.
    pub stored_bytes: u64,
    /// Every distinct pack the backup's blobs live in.
    pub packs: Vec<String>,
    /// Every distinct blob id (hex), so integrity checks need no identity.
    pub blobs: Vec<String>,
    /// Base backups: where the WAL they need starts (WAL retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_start: Option<super::wal::WalStart>,
}

/// The readable part: only with the identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Body {
    pub id: String,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Source-specific facts (command argv, paths, server versions…).
    #[serde(default)]
    pub engine: serde_json::Value,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Artifact {
    pub name: String,
    /// `stream` (raw bytes) or `tar` (an archive restorable into a directory).
    pub format: String,
    pub size: u64,
    /// BLAKE3 of the whole plaintext stream, checked on restore.
    pub blake3: String,
    /// Blob ids (hex) in stream order.
    pub blobs: Vec<String>,
}

/// The manifest version this build writes: 2 binds the body to the header
/// (`body_mac`) and to the object name (`id`). Version 1 is still read.
pub const MANIFEST_VERSION: u32 = 2;

/// A manifest object that can never be read whatever the key: empty,
/// shorter than its own header length says, or not a manifest at all (a
/// write cut short by a power loss, or garbage). Garbage collection ignores
/// such objects instead of stopping; see docs/FORMAT.md.
#[derive(Debug)]
pub struct Truncated {
    pub len: usize,
    pub why: String,
}

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the object is {} ({} bytes)", self.why, self.len)
    }
}

impl std::error::Error for Truncated {}

/// Whether `err` says the manifest object is truncated or not a manifest.
pub fn is_truncated(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<Truncated>().is_some())
}

fn mismatch(what: String) -> anyhow::Error {
    Failure::new(ExitStatus::Failure, what)
        .with_remedy("Someone with write access to the storage replaced or copied this object (or it is damaged): do not trust it. Restore another backup or the same backup from another target (--target), and run `vaultctl verify`.")
        .into()
}

/// Encodes a manifest. Whatever `header.version` says, the current
/// [`MANIFEST_VERSION`] is written: the sealed header carries `body_mac`
/// (see [`DedupKey::manifest_body_mac`]) and the body carries the
/// header's `id`, `source` and `kind`.
pub fn encode(
    header: &Header,
    body: &Body,
    key: &DedupKey,
    recipients: &[Recipient],
) -> Result<Vec<u8>> {
    let parts = BodyParts {
        note: &body.note,
        tenants: &body.tenants,
        engine: &body.engine,
        artifacts: &body.artifacts,
    };
    encode_with(
        header,
        HeaderBlobs::Hex(&header.blobs),
        &parts,
        key,
        recipients,
    )
}

/// A body to encode, its parts given as anything that serializes to the
/// JSON of [`Body`]'s fields: the backup pipeline streams `engine` and
/// `artifacts` from its spills ([`super::spill`]) instead of holding
/// 10,000 tenants' artifacts and row counts in memory.
pub struct BodyParts<'a, E: Serialize, A: Serialize> {
    pub note: &'a Option<String>,
    pub tenants: &'a [String],
    pub engine: &'a E,
    pub artifacts: &'a A,
}

/// The header's `blobs`: hex strings, or a backup's distinct ids sorted
/// on disk ([`SortedIds`]: written as the same hex strings, read as they
/// are written; `header.blobs` is then not read).
pub enum HeaderBlobs<'a> {
    Hex(&'a [String]),
    Sorted(&'a SortedIds),
}

/// A backup's distinct blob ids in ascending order, from an external sort
/// ([`super::extsort`]): read once, while the header is written, and
/// counted.
pub struct SortedIds {
    ids: RefCell<Sorted<BlobId>>,
    written: Cell<usize>,
}

impl SortedIds {
    pub fn new(ids: Sorted<BlobId>) -> SortedIds {
        SortedIds {
            ids: RefCell::new(ids),
            written: Cell::new(0),
        }
    }

    /// How many ids the header received.
    pub fn written(&self) -> usize {
        self.written.get()
    }
}

impl Serialize for HeaderBlobs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            HeaderBlobs::Hex(v) => v.serialize(s),
            HeaderBlobs::Sorted(sorted) => {
                let mut ids = sorted.ids.borrow_mut();
                super::spill::serialize_hex_ids(s, None, || {
                    let id = ids.next_record()?;
                    if id.is_some() {
                        sorted.written.set(sorted.written.get() + 1);
                    }
                    Ok(id)
                })
            }
        }
    }
}

/// [`encode`] with the body in parts and the header's blob ids given
/// apart: the same bytes (but for the encryption's randomness) as
/// [`encode`] of the equivalent [`Header`] and [`Body`].
pub fn encode_with<E: Serialize, A: Serialize>(
    header: &Header,
    blobs: HeaderBlobs<'_>,
    parts: &BodyParts<'_, E, A>,
    key: &DedupKey,
    recipients: &[Recipient],
) -> Result<Vec<u8>> {
    let (prefix, mut body) = encode_into(header, blobs, parts, key, recipients, Vec::new())?;
    // The prefix goes in front of the body in place: the body is not
    // copied into a second buffer.
    body.reserve_exact(prefix.len());
    body.splice(0..0, prefix);
    Ok(body)
}

/// A manifest body larger than this is spooled to an unnamed temporary
/// file by [`encode_spooled`] (and streamed from there to the targets);
/// 64 KiB in unit tests, so the backups of a few hundred artifacts there
/// take that path.
pub const SPOOL_BYTES: usize = if cfg!(test) { 64 << 10 } else { 1 << 20 };

/// [`encode_with`] as a [`Payload`]: the body is written (encrypted) to a
/// spooled temporary file, in memory up to [`SPOOL_BYTES`], then an
/// unnamed file in `$TMPDIR`; only the header is built in memory. 10,000
/// tenants make a body of about 5 MB, 30,000 about 15 MB: never held whole.
pub fn encode_spooled<E: Serialize, A: Serialize>(
    header: &Header,
    blobs: HeaderBlobs<'_>,
    parts: &BodyParts<'_, E, A>,
    key: &DedupKey,
    recipients: &[Recipient],
) -> Result<Payload> {
    let spool =
        std::io::BufWriter::with_capacity(64 * 1024, tempfile::spooled_tempfile(SPOOL_BYTES));
    let unwritable = |e: std::io::Error| -> anyhow::Error {
        Failure::new(
            ExitStatus::Failure,
            format!("the backup cannot write its manifest to a temporary file in {}: {e}; nothing was committed.", std::env::temp_dir().display()),
        )
        .with_remedy("Set TMPDIR to a writable directory with room for the manifest (about 500 bytes an artifact), then run the backup again.")
        .into()
    };
    let (prefix, spool) = encode_into(header, blobs, parts, key, recipients, spool)?;
    let spool = spool.into_inner().map_err(|e| unwritable(e.into_error()))?;
    Ok(match spool.into_inner() {
        tempfile::SpooledData::InMemory(body) => {
            let mut all = prefix;
            all.extend_from_slice(body.get_ref());
            Payload::Bytes(all.into())
        }
        tempfile::SpooledData::OnDisk(file) => {
            let body_len = file.metadata().map_err(unwritable)?.len();
            Payload::Spooled {
                head: prefix.into(),
                body: std::sync::Arc::new(file),
                body_len,
            }
        }
    })
}

/// Counts and MACs what goes through it: the stored body.
struct MacWriter<W> {
    inner: W,
    mac: blake3::Hasher,
}

impl<W: std::io::Write> std::io::Write for MacWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.mac.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Encrypts the body into `out` and returns the manifest's prefix (magic,
/// header length, sealed header with the body's MAC) and `out`: the stored
/// manifest is the prefix followed by what `out` received.
fn encode_into<E: Serialize, A: Serialize, W: std::io::Write>(
    header: &Header,
    blobs: HeaderBlobs<'_>,
    parts: &BodyParts<'_, E, A>,
    key: &DedupKey,
    recipients: &[Recipient],
    out: W,
) -> Result<(Vec<u8>, W)> {
    // Serialized straight into the encryption: neither a JSON tree of the
    // body nor its plaintext is held (10,000 tenant artifacts with their
    // row counts made tens of MB of both).
    #[derive(Serialize)]
    struct Stored<'a, E: Serialize, A: Serialize> {
        id: &'a str,
        source: &'a str,
        kind: &'a str,
        note: &'a Option<String>,
        tenants: &'a [String],
        engine: &'a E,
        artifacts: &'a A,
    }
    let stored = Stored {
        id: &header.id,
        source: &header.source,
        kind: &header.kind,
        note: parts.note,
        tenants: parts.tenants,
        engine: parts.engine,
        artifacts: parts.artifacts,
    };
    let mut w = super::keys::encrypt_writer(
        recipients,
        MacWriter {
            inner: out,
            mac: key.manifest_body_hasher(),
        },
    )?;
    // Compact: a 10,000-tenant body is a third smaller than pretty-printed
    // (every night, on every target); `jq .` prints it for a human.
    format::write_buffered(&mut w, |b| Ok(serde_json::to_writer(b, &stored)?))?;
    let MacWriter { inner: out, mac } = w.finish()?;
    // The header's JSON as `serde_json` writes a `Value` of it (keys
    // sorted), without building one: one hex string per blob, not three.
    #[derive(Serialize)]
    struct Sealed<'a> {
        blobs: HeaderBlobs<'a>,
        body_mac: String,
        bytes: u64,
        duration_ms: u64,
        finished_at: &'a str,
        host: &'a str,
        id: &'a str,
        kind: &'a str,
        packs: &'a [String],
        source: &'a str,
        started_at: &'a str,
        stored_bytes: u64,
        tags: &'a [String],
        version: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        wal_start: Option<serde_json::Value>,
    }
    let sealed = Sealed {
        blobs,
        body_mac: hex::encode(mac.finalize().as_bytes()),
        bytes: header.bytes,
        duration_ms: header.duration_ms,
        finished_at: &header.finished_at,
        host: &header.host,
        id: &header.id,
        kind: &header.kind,
        packs: &header.packs,
        source: &header.source,
        started_at: &header.started_at,
        stored_bytes: header.stored_bytes,
        tags: &header.tags,
        version: MANIFEST_VERSION,
        wal_start: header
            .wal_start
            .as_ref()
            .map(serde_json::to_value)
            .transpose()?,
    };
    // Sealed straight into the prefix, after its magic and length: one
    // copy of a header of millions of blob ids, not four.
    let mut prefix = MANIFEST_MAGIC.to_vec();
    prefix.extend_from_slice(&[0u8; 4]);
    let at = prefix.len();
    let mut prefix =
        format::seal_metadata(key, prefix, |w| Ok(serde_json::to_writer(w, &sealed)?))?;
    let len = u32::try_from(prefix.len() - at).context("the manifest header is over 4 GiB")?;
    prefix[at - 4..at].copy_from_slice(&len.to_le_bytes());
    Ok((prefix, out))
}

/// Splits a stored manifest into its sealed header and its age body. The
/// header length is checked against the object's size before any use.
fn split(stored: &[u8]) -> Result<(&[u8], &[u8])> {
    let truncated = |why: &str| {
        anyhow::Error::new(Truncated {
            len: stored.len(),
            why: why.into(),
        })
    };
    if stored.is_empty() {
        return Err(truncated("empty"));
    }
    if stored.len() < 12 {
        return Err(truncated("truncated (shorter than the 12-byte prefix)"));
    }
    if &stored[..8] != MANIFEST_MAGIC {
        return Err(truncated("not a vaultctl manifest (bad magic)"));
    }
    let n = u32::from_le_bytes(stored[8..12].try_into().unwrap()) as usize;
    if n > stored.len() - 12 {
        return Err(truncated(&format!(
            "truncated (its header length says {n} bytes, more than the object holds)"
        )));
    }
    Ok((&stored[12..12 + n], &stored[12 + n..]))
}

/// Opens and checks a manifest's header; `name` is the id in the object's
/// name (`snapshots/<name>`). Refuses, naming the object: a header of
/// another id (a renamed or copied manifest: rollback), a body that is not
/// the one the header was sealed with (version 2: `body_mac`), and versions
/// this build does not know. Needs only the dedup key.
pub fn decode_header(stored: &[u8], key: &DedupKey, name: &str) -> Result<Header> {
    let (header, version, body_mac) = open_header(stored, key, name)?;
    let (_, body) = split(stored)?;
    if header.id != name {
        return Err(mismatch(format!(
            "manifest {name} holds the header of backup {} (the object was renamed or copied over another: an older backup posing as a newer one).",
            header.id
        )));
    }
    if version >= 2 {
        let expected = hex::encode(key.manifest_body_mac(body));
        if body_mac.as_deref() != Some(expected.as_str()) {
            return Err(mismatch(format!(
                "the body of manifest {name} is not the one its header was written with (replaced, spliced, cut short or damaged)."
            )));
        }
    }
    Ok(header)
}

/// The header of a manifest object without the binding checks (name and
/// body): only for garbage collection, which keeps the packs of every
/// authentic header, bound or not. Never for restoring or listing.
pub fn decode_header_unbound(stored: &[u8], key: &DedupKey) -> Result<Header> {
    open_header(stored, key, "(unbound)").map(|(h, _, _)| h)
}

/// Opens, decompresses (bounded) and parses a header; checks its version.
fn open_header(stored: &[u8], key: &DedupKey, name: &str) -> Result<(Header, u32, Option<String>)> {
    let (sealed, _) = split(stored)?;
    let what = format!("the header of manifest {name}");
    let json = format::decompress_metadata(&key.open(sealed)?, &what)?;
    #[derive(Deserialize)]
    struct Probe {
        version: Option<u32>,
        #[serde(default)]
        body_mac: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(&json)
        .map_err(|e| anyhow::anyhow!("{what} is not valid JSON: {e}"))?;
    let version = probe.version.unwrap_or(0);
    if version != 1 && version != MANIFEST_VERSION {
        return Err(Failure::new(
            ExitStatus::Failure,
            format!("manifest {name} has format version {version}; this vaultctl reads versions 1 and {MANIFEST_VERSION}."),
        )
        .with_remedy("Use the vaultctl release that wrote it, or a newer one.")
        .into());
    }
    let header: Header = serde_json::from_slice(&json)
        .map_err(|e| anyhow::anyhow!("{what} is not a valid manifest header: {e}"))?;
    Ok((header, version, probe.body_mac))
}

/// Whether a header's body is bound to it (version 2 and later).
pub fn body_bound(header: &Header) -> bool {
    header.version >= 2
}

/// Decrypts a manifest's body (needs the identity) and checks that it is
/// the body of `header`: the same id, and — when the body records them — the
/// same source and kind. Call with a header from [`decode_header`].
pub fn decode_body(stored: &[u8], identities: &[Identity], header: &Header) -> Result<Body> {
    decode_body_only(stored, identities, header, None)
}

/// The part of a tenant backup's body one reader needs: the artifacts
/// called `artifacts` and the row counts (`engine.rows`) of `tenants`. A
/// restore of one tenant of a 300,000-tenant backup keeps one artifact of a
/// body of 150 MB. The body of any other backup (its `engine.mode` is not
/// `tenants`, or it comes after the artifacts) keeps every artifact.
pub struct Only<'a> {
    artifacts: std::collections::HashSet<&'a str>,
    tenants: std::collections::HashSet<&'a str>,
}

impl<'a> Only<'a> {
    /// Sets, so that a restore of many tenants looks each artifact of a
    /// large body up once, not in a list.
    pub fn new(artifacts: &'a [String], tenants: &'a [String]) -> Only<'a> {
        Only {
            artifacts: artifacts.iter().map(String::as_str).collect(),
            tenants: tenants.iter().map(String::as_str).collect(),
        }
    }
}

/// [`decode_body`] keeping only what `only` names (everything when it is
/// `None`). The body is decrypted and parsed as one stream, never whole in
/// memory: the stored bytes are its only copy.
pub fn decode_body_only(
    stored: &[u8],
    identities: &[Identity],
    header: &Header,
    only: Option<&Only>,
) -> Result<Body> {
    let (_, body) = split(stored)?;
    let plain = std::io::BufReader::with_capacity(
        64 * 1024,
        super::keys::decrypt_reader(identities, body)?,
    );
    let mut json = serde_json::Deserializer::from_reader(plain);
    let parsed = serde::de::DeserializeSeed::deserialize(BodySeed { only }, &mut json)
        .and_then(|p| json.end().map(|()| p))
        .map_err(|e| {
            if e.is_io() {
                super::keys::damaged_part_way(e).into()
            } else {
                anyhow::anyhow!("the body of manifest {} is not valid: {e}", header.id)
            }
        })?;
    if parsed.body.id != header.id {
        return Err(mismatch(format!(
            "the body of manifest {} belongs to backup {} (the body was replaced).",
            header.id, parsed.body.id
        )));
    }
    for (field, got, want) in [
        ("source", &parsed.source, &header.source),
        ("kind", &parsed.kind, &header.kind),
    ] {
        if let Some(got) = got {
            if got != want {
                return Err(mismatch(format!(
                    "the body of manifest {} names {field} '{got}', its header '{want}' (the body was replaced).",
                    header.id
                )));
            }
        }
    }
    if header.version >= 2 && (parsed.source.is_none() || parsed.kind.is_none()) {
        return Err(mismatch(format!(
            "the body of manifest {} lacks its source and kind (the body was replaced).",
            header.id
        )));
    }
    Ok(parsed.body)
}

/// A body as parsed, with the source and kind it records (checked against
/// the header).
struct Parsed {
    body: Body,
    source: Option<String>,
    kind: Option<String>,
}

/// Parses a body's JSON object, filtering artifacts and row counts on the
/// way by [`Only`].
struct BodySeed<'a, 'b> {
    only: Option<&'b Only<'a>>,
}

/// Sets a field once: a body naming one twice is refused, as the derived
/// `Deserialize` of [`Body`] does.
fn set_once<T, E: serde::de::Error>(
    slot: &mut Option<T>,
    name: &'static str,
    value: T,
) -> std::result::Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

impl<'de> serde::de::DeserializeSeed<'de> for BodySeed<'_, '_> {
    type Value = Parsed;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Parsed, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for BodySeed<'_, '_> {
    type Value = Parsed;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a manifest body (a JSON object)")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(
        self,
        mut map: M,
    ) -> std::result::Result<Parsed, M::Error> {
        use serde::de::Error;
        let (mut id, mut note, mut tenants, mut engine, mut artifacts) =
            (None, None, None, None, None);
        let (mut source, mut kind) = (None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'_, str>>()? {
            match &*key {
                "id" => set_once(&mut id, "id", map.next_value::<String>()?)?,
                "note" => set_once(&mut note, "note", map.next_value::<Option<String>>()?)?,
                "tenants" => set_once(&mut tenants, "tenants", map.next_value::<Vec<String>>()?)?,
                "engine" => {
                    let value = match self.only {
                        Some(only) => map.next_value_seed(EngineSeed { only, rows: false })?,
                        None => map.next_value()?,
                    };
                    set_once(&mut engine, "engine", value)?
                }
                "artifacts" => {
                    let tenant_backup = engine
                        .as_ref()
                        .is_some_and(|e: &serde_json::Value| e["mode"] == "tenants");
                    let value = match self.only.filter(|_| tenant_backup) {
                        Some(only) => map.next_value_seed(ArtifactsSeed(only))?,
                        None => map.next_value()?,
                    };
                    set_once(&mut artifacts, "artifacts", value)?
                }
                "source" => set_once(&mut source, "source", map.next_value::<Option<String>>()?)?,
                "kind" => set_once(&mut kind, "kind", map.next_value::<Option<String>>()?)?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Parsed {
            body: Body {
                id: id.ok_or_else(|| M::Error::missing_field("id"))?,
                note: note.flatten(),
                tenants: tenants.unwrap_or_default(),
                engine: engine.unwrap_or_default(),
                artifacts: artifacts.ok_or_else(|| M::Error::missing_field("artifacts"))?,
            },
            source: source.flatten(),
            kind: kind.flatten(),
        })
    }
}

/// The artifacts [`Only`] names, in body order; the others are parsed and
/// dropped one at a time.
struct ArtifactsSeed<'a, 'b>(&'b Only<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for ArtifactsSeed<'_, '_> {
    type Value = Vec<Artifact>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Vec<Artifact>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ArtifactsSeed<'_, '_> {
    type Value = Vec<Artifact>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of artifacts")
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(
        self,
        mut seq: S,
    ) -> std::result::Result<Vec<Artifact>, S::Error> {
        let mut kept = Vec::new();
        while let Some(a) = seq.next_element::<Artifact>()? {
            if self.0.artifacts.contains(a.name.as_str()) {
                kept.push(a);
            }
        }
        Ok(kept)
    }
}

/// The body's `engine` object (`rows: false`), its `rows` (row counts by
/// tenant, `rows: true`) kept for the tenants [`Only`] names.
struct EngineSeed<'a, 'b> {
    only: &'b Only<'a>,
    rows: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for EngineSeed<'_, '_> {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<serde_json::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EngineSeed<'_, '_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the engine's facts (a JSON object or null)")
    }

    fn visit_unit<E>(self) -> std::result::Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(
        self,
        mut map: M,
    ) -> std::result::Result<serde_json::Value, M::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if !self.rows && key == "rows" {
                let rows = EngineSeed {
                    only: self.only,
                    rows: true,
                };
                out.insert(key, map.next_value_seed(rows)?);
            } else if !self.rows || self.only.tenants.contains(key.as_str()) {
                out.insert(key, map.next_value()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(serde_json::Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::extsort::sorted;
    use crate::repo::keys::{decrypt, encrypt};
    use crate::repo::spill::IdSpool;

    fn fixture() -> (Header, Body, DedupKey, Vec<Identity>, Vec<Recipient>) {
        let id = age::x25519::Identity::generate();
        let rcpt = vec![Recipient::X25519(id.to_public())];
        let header: Header = serde_json::from_value(serde_json::json!({
            "version": 1, "id": "00000000000000aa", "source": "db", "kind": "command",
            "host": "h", "started_at": "s", "finished_at": "f", "duration_ms": 1,
            "bytes": 0, "stored_bytes": 0, "packs": [], "blobs": []
        }))
        .unwrap();
        let body: Body = serde_json::from_value(
            serde_json::json!({ "id": "00000000000000aa", "artifacts": [] }),
        )
        .unwrap();
        (
            header,
            body,
            DedupKey::generate(),
            vec![Identity::X25519(id)],
            rcpt,
        )
    }

    /// A version 1 manifest, as vaultctl wrote it before the binding.
    fn encode_v1(header: &Header, body: &Body, key: &DedupKey, r: &[Recipient]) -> Vec<u8> {
        let sealed =
            key.seal(&zstd::bulk::compress(&serde_json::to_vec(header).unwrap(), 3).unwrap());
        let body = encrypt(r, &serde_json::to_vec(body).unwrap()).unwrap();
        [
            MANIFEST_MAGIC.to_vec(),
            (sealed.len() as u32).to_le_bytes().to_vec(),
            sealed,
            body,
        ]
        .concat()
    }

    #[test]
    fn version_2_roundtrip_and_binding() {
        let (h, b, key, ids, r) = fixture();
        let stored = encode(&h, &b, &key, &r).unwrap();
        let got = decode_header(&stored, &key, &h.id).unwrap();
        assert_eq!(got.version, MANIFEST_VERSION);
        assert!(body_bound(&got));
        assert_eq!(decode_body(&stored, &ids, &got).unwrap(), b);
        // Another name: refused.
        let err = decode_header(&stored, &key, "00000000000000bb").unwrap_err();
        assert!(err
            .to_string()
            .contains("holds the header of backup 00000000000000aa"));
        // Another body, even one made for this id: refused.
        let (head, _) = split(&stored).unwrap();
        let forged = encrypt(
            &r,
            br#"{"id":"00000000000000aa","source":"db","kind":"command","artifacts":[]}"#,
        )
        .unwrap();
        let spliced = [&stored[..12], head, &forged[..]].concat();
        let err = decode_header(&spliced, &key, &h.id).unwrap_err();
        assert!(
            err.to_string()
                .contains("not the one its header was written with"),
            "{err}"
        );
    }

    /// The encoder as it was before the body was written in parts (a JSON
    /// tree of the header): what [`encode`] and [`encode_with`] must
    /// still write, byte for byte.
    fn encode_before(header: &Header, body: &Body, key: &DedupKey, r: &[Recipient]) -> Vec<u8> {
        #[derive(Serialize)]
        struct Stored<'a> {
            id: &'a str,
            source: &'a str,
            kind: &'a str,
            note: &'a Option<String>,
            tenants: &'a [String],
            engine: &'a serde_json::Value,
            artifacts: &'a [Artifact],
        }
        let stored = Stored {
            id: &header.id,
            source: &header.source,
            kind: &header.kind,
            note: &body.note,
            tenants: &body.tenants,
            engine: &body.engine,
            artifacts: &body.artifacts,
        };
        let body = encrypt(r, &serde_json::to_vec(&stored).unwrap()).unwrap();
        let mut header_json = serde_json::to_value(header).unwrap();
        header_json["version"] = MANIFEST_VERSION.into();
        header_json["body_mac"] = hex::encode(key.manifest_body_mac(&body)).into();
        let sealed =
            key.seal(&zstd::bulk::compress(&serde_json::to_vec(&header_json).unwrap(), 3).unwrap());
        [
            MANIFEST_MAGIC.to_vec(),
            (sealed.len() as u32).to_le_bytes().to_vec(),
            sealed,
            body,
        ]
        .concat()
    }

    /// The header's JSON text (its `body_mac`, which binds the randomly
    /// encrypted body, replaced by `MAC`) and the body's plaintext.
    fn plaintexts(stored: &[u8], key: &DedupKey, ids: &[Identity]) -> (String, String) {
        let (sealed, body) = split(stored).unwrap();
        let json = format::decompress_metadata(&key.open(sealed).unwrap(), "h").unwrap();
        let mac = hex::encode(key.manifest_body_mac(body));
        let header = String::from_utf8(json).unwrap();
        assert!(header.contains(&mac));
        (
            header.replace(&mac, "MAC"),
            String::from_utf8(decrypt(ids, body).unwrap()).unwrap(),
        )
    }

    /// A tenant backup's manifest, small: three tenants with row counts,
    /// their artifacts and blob ids, tags and a WAL start.
    fn tenant_manifest() -> (Header, Body, Vec<[u8; 32]>, Vec<[u64; 2]>) {
        let (mut h, mut b, _, _, _) = fixture();
        let ids: Vec<[u8; 32]> = (0..5u8).map(|i| [i * 40; 32]).collect();
        let chunks = [2usize, 0, 3];
        let rows = vec![[1u64, 7], [1, 0], [1, 12]];
        let tenants: Vec<String> = ["acme", "b\"q", "zeta"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        let mut at = 0;
        for (i, t) in tenants.iter().enumerate() {
            b.artifacts.push(Artifact {
                name: format!("tenant-{t}"),
                format: "stream".into(),
                size: 100 + i as u64,
                blake3: hex::encode([i as u8 + 1; 32]),
                blobs: ids[at..at + chunks[i]].iter().map(hex::encode).collect(),
            });
            at += chunks[i];
        }
        let mut counts = serde_json::Map::new();
        for (t, r) in tenants.iter().zip(&rows) {
            counts.insert(
                t.clone(),
                serde_json::json!({"public.tenants": r[0], "public.orders": r[1]}),
            );
        }
        b.engine = serde_json::json!({"mode": "tenants", "database": "app", "tables": ["public.tenants", "public.orders"], "rows": counts});
        b.tenants = tenants;
        b.note = Some("a note".into());
        h.kind = "postgres".into();
        h.tags = vec!["nightly".into()];
        h.packs = vec!["p1".into(), "p2".into()];
        let mut distinct = ids.clone();
        distinct.sort();
        h.blobs = distinct.iter().map(hex::encode).collect();
        h.wal_start = Some(
            serde_json::from_value(serde_json::json!({"timeline": 1, "start_lsn": "0/2000028"}))
                .unwrap(),
        );
        (h, b, ids, rows)
    }

    #[test]
    fn a_body_read_for_some_tenants_keeps_only_theirs() {
        let (_, _, key, ids, r) = fixture();
        let (h, b, _, _) = tenant_manifest();
        let stored = encode(&h, &b, &key, &r).unwrap();
        let got = decode_header(&stored, &key, &h.id).unwrap();
        let only = |tenants: &[&str]| {
            let tenants: Vec<String> = tenants.iter().map(|t| t.to_string()).collect();
            let names: Vec<String> = tenants.iter().map(|t| format!("tenant-{t}")).collect();
            let only = Only::new(&names, &tenants);
            decode_body_only(&stored, &ids, &got, Some(&only)).unwrap()
        };
        let zeta = only(&["zeta"]);
        assert_eq!(zeta.artifacts, vec![b.artifacts[2].clone()]);
        assert_eq!(
            zeta.engine["rows"],
            serde_json::json!({"zeta": b.engine["rows"]["zeta"]})
        );
        // The rest is the body's: every tenant, every other fact.
        assert_eq!(zeta.tenants, b.tenants);
        assert_eq!((&zeta.id, &zeta.note), (&b.id, &b.note));
        assert_eq!(zeta.engine["tables"], b.engine["tables"]);
        let two = only(&["b\"q", "acme"]);
        assert_eq!(
            two.artifacts,
            vec![b.artifacts[0].clone(), b.artifacts[1].clone()]
        );
        assert_eq!(two.engine["rows"].as_object().unwrap().len(), 2);
        assert!(only(&["nosuch"]).artifacts.is_empty());
        // Not a tenant backup: every artifact, whatever `only` names.
        let mut full = b.clone();
        full.engine = serde_json::json!({"mode": "full", "database": "app"});
        let stored = encode(&h, &full, &key, &r).unwrap();
        let got = decode_header(&stored, &key, &h.id).unwrap();
        let names = vec!["tenant-zeta".to_string()];
        let some = Only::new(&names, &[]);
        assert_eq!(
            decode_body_only(&stored, &ids, &got, Some(&some)).unwrap(),
            full
        );
    }

    #[test]
    fn a_body_that_names_a_field_twice_is_refused() {
        // Version 1 (no body MAC), so the body is read as it is written.
        let (mut h, _, key, ids, r) = fixture();
        h.version = 1;
        let sealed = key.seal(&zstd::bulk::compress(&serde_json::to_vec(&h).unwrap(), 3).unwrap());
        for body in [
            r#"{"id":"00000000000000aa","id":"00000000000000aa","artifacts":[]}"#,
            r#"{"id":"00000000000000aa","artifacts":[],"artifacts":[]}"#,
        ] {
            let stored = [
                MANIFEST_MAGIC.to_vec(),
                (sealed.len() as u32).to_le_bytes().to_vec(),
                sealed.clone(),
                encrypt(&r, body.as_bytes()).unwrap(),
            ]
            .concat();
            let got = decode_header(&stored, &key, &h.id).unwrap();
            let err = decode_body(&stored, &ids, &got).unwrap_err();
            assert!(format!("{err:#}").contains("duplicate field"), "{err:#}");
        }
    }

    #[test]
    fn encode_writes_what_the_tree_encoder_wrote() {
        let (_, _, key, ids, r) = fixture();
        let (h, b, _, _) = tenant_manifest();
        let before = plaintexts(&encode_before(&h, &b, &key, &r), &key, &ids);
        let now = plaintexts(&encode(&h, &b, &key, &r).unwrap(), &key, &ids);
        assert_eq!(now, before);
        assert!(now.1.contains("\"rows\":{"), "{}", now.1);
    }

    #[test]
    fn streamed_parts_write_the_same_manifest() {
        use crate::repo::spill::{
            ArtifactRecord, ArtifactSpill, Artifacts, CountTable, WithCounts,
        };
        let (_, _, key, ids, r) = fixture();
        let (h, b, blob_ids, rows) = tenant_manifest();
        let before = encode_before(&h, &b, &key, &r);
        // The same backup as the pipeline streams it: artifacts and row
        // counts from spills, blob ids as 32-byte values.
        let mut spill = ArtifactSpill::new();
        for a in &b.artifacts {
            spill
                .push(&ArtifactRecord {
                    name: a.name.clone(),
                    format: a.format.clone(),
                    size: a.size,
                    blake3: hex::decode(&a.blake3).unwrap().try_into().unwrap(),
                    chunks: a.blobs.len() as u64,
                })
                .unwrap();
        }
        let mut counts = CountTable::new(vec!["public.tenants".into(), "public.orders".into()]);
        for r in &rows {
            counts.push(r).unwrap();
        }
        let mut engine = b.engine.clone();
        engine.as_object_mut().unwrap().remove("rows");
        let mut spooled = IdSpool::new();
        for id in &blob_ids {
            spooled.push(id).unwrap();
        }
        let mut header = h.clone();
        header.blobs.clear();
        let facts = WithCounts::new(&engine).with("rows", &mut counts, &b.tenants);
        let parts = BodyParts {
            note: &b.note,
            tenants: &b.tenants,
            engine: &facts,
            artifacts: &Artifacts::new(&mut spill, &mut spooled),
        };
        let listed = SortedIds::new(sorted(&blob_ids));
        let stored = encode_with(&header, HeaderBlobs::Sorted(&listed), &parts, &key, &r).unwrap();
        assert_eq!(listed.written(), h.blobs.len());
        assert_eq!(
            plaintexts(&stored, &key, &ids),
            plaintexts(&before, &key, &ids)
        );
        // It reads back as the header and body it replaces.
        let got = decode_header(&stored, &key, &h.id).unwrap();
        assert_eq!(got.blobs, h.blobs);
        assert_eq!(decode_body(&stored, &ids, &got).unwrap(), b);
        // The ids in stream order with repeats, sorted through runs on
        // disk (a repeat in two runs): the same header.
        let mut repeated = blob_ids.clone();
        repeated.push(blob_ids[0]);
        repeated.insert(0, blob_ids[blob_ids.len() - 1]);
        let whole = BodyParts {
            note: &b.note,
            tenants: &b.tenants,
            engine: &b.engine,
            artifacts: &b.artifacts,
        };
        let ordered = SortedIds::new(sorted(&repeated));
        let stored = encode_with(&header, HeaderBlobs::Sorted(&ordered), &whole, &key, &r).unwrap();
        assert_eq!(ordered.written(), blob_ids.len());
        assert_eq!(
            plaintexts(&stored, &key, &ids),
            plaintexts(&before, &key, &ids)
        );
        // Row counts that are not one per tenant: refused, not written.
        let stored = encode_with(
            &header,
            HeaderBlobs::Sorted(&SortedIds::new(sorted(&blob_ids))),
            &BodyParts {
                note: &b.note,
                tenants: &b.tenants,
                engine: &WithCounts::new(&engine).with(
                    "rows",
                    &mut CountTable::new(vec![]),
                    &b.tenants,
                ),
                artifacts: &b.artifacts,
            },
            &key,
            &r,
        );
        assert!(
            stored.is_err(),
            "counts that do not match the tenants must fail"
        );
    }

    #[test]
    fn version_1_is_read_with_name_and_body_id_checks() {
        let (h, b, key, ids, r) = fixture();
        let stored = encode_v1(&h, &b, &key, &r);
        let got = decode_header(&stored, &key, &h.id).unwrap();
        assert!(!body_bound(&got));
        assert_eq!(decode_body(&stored, &ids, &got).unwrap(), b);
        assert!(decode_header(&stored, &key, "00000000000000bb").is_err());
        let mut other = b.clone();
        other.id = "00000000000000bb".into();
        let stored = encode_v1(&h, &other, &key, &r);
        let err = decode_body(&stored, &ids, &got).unwrap_err();
        assert!(
            err.to_string()
                .contains("belongs to backup 00000000000000bb"),
            "{err}"
        );
    }

    #[test]
    fn unknown_versions_are_refused() {
        let (mut h, b, key, _, r) = fixture();
        h.version = 3;
        let stored = encode_v1(&h, &b, &key, &r);
        let err = decode_header(&stored, &key, &h.id).unwrap_err();
        assert!(err.to_string().contains("format version 3"), "{err}");
        assert!(!is_truncated(&err));
    }

    #[test]
    fn truncated_objects_are_told_apart() {
        let (h, b, key, _, r) = fixture();
        let stored = encode(&h, &b, &key, &r).unwrap();
        for cut in [0, 5, 12, 40] {
            let err = decode_header(&stored[..cut], &key, &h.id).unwrap_err();
            assert!(is_truncated(&err), "{cut}: {err}");
        }
        let err = decode_header(&[0u8; 100], &key, &h.id).unwrap_err();
        assert!(is_truncated(&err));
        // A whole header with a cut body is not "truncated": the header
        // reads, and the body no longer matches it.
        let err = decode_header(&stored[..stored.len() - 10], &key, &h.id).unwrap_err();
        assert!(!is_truncated(&err));
        // A damaged seal is not either: it could be the wrong key.
        let mut bad = stored.clone();
        bad[30] ^= 1;
        assert!(!is_truncated(
            &decode_header(&bad, &key, &h.id).unwrap_err()
        ));
    }
}
