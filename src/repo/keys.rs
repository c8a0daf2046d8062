//! Key material: age recipients and identities, and the dedup key with the
//! sub-keys derived from it.
//!
//! Two kinds of keys, because a backup host must not be able to read old
//! backups: the **dedup key** (32 random bytes, kept on every backup host) keys
//! blob ids, the chunker and the metadata cipher that protects indexes and
//! manifest headers; the **age identity** (kept off write-only hosts) is the
//! only key that opens packs and manifest bodies.

use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::error::{fail, ExitStatus, Failure};

/// Bytes of the nonce that starts sealed metadata.
pub const SEAL_NONCE: usize = 24;
/// Bytes of the authentication tag that ends it.
const SEAL_TAG: usize = 16;

/// The repository's dedup key and its derived sub-keys.
#[derive(Clone)]
pub struct DedupKey {
    root: [u8; 32],
    blob_id: [u8; 32],
    metadata: [u8; 32],
}

impl std::fmt::Debug for DedupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DedupKey(..)")
    }
}

impl DedupKey {
    pub fn generate() -> Self {
        let mut root = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut root);
        Self::from_root(root)
    }

    pub fn from_root(root: [u8; 32]) -> Self {
        DedupKey {
            root,
            blob_id: blake3::derive_key("vaultctl v1 blob id", &root),
            metadata: blake3::derive_key("vaultctl v1 metadata", &root),
        }
    }

    pub fn root(&self) -> &[u8; 32] {
        &self.root
    }

    /// A public fingerprint stored in the repository config, so a host with
    /// the wrong dedup key is refused instead of silently breaking dedup.
    pub fn check_value(&self) -> String {
        hex::encode(blake3::derive_key("vaultctl v1 key check", &self.root))
    }

    /// Seed of the chunker's gear table: chunk boundaries depend on the key,
    /// so chunk sizes do not reveal known content.
    pub fn chunker_seed(&self) -> [u8; 32] {
        blake3::derive_key("vaultctl v1 chunker", &self.root)
    }

    /// Blob id: keyed BLAKE3 of the plaintext.
    pub fn blob_id(&self, data: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.blob_id, data).as_bytes()
    }

    /// Identity of an archived WAL file: keyed BLAKE3 of its plaintext under
    /// the `vaultctl v1 wal id` sub-key (compared without any identity).
    pub fn wal_id(&self, data: &[u8]) -> [u8; 32] {
        *self.wal_id_hasher().update(data).finalize().as_bytes()
    }

    /// The hasher behind [`DedupKey::wal_id`], for streamed data.
    pub fn wal_id_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&blake3::derive_key("vaultctl v1 wal id", &self.root))
    }

    /// Binds a manifest's body to its header: keyed BLAKE3 of the body's
    /// exact stored bytes (the age file) under the `vaultctl v1 manifest
    /// body` sub-key. Kept in the sealed header, so whoever lacks the dedup
    /// key (the storage) cannot give a header another body.
    pub fn manifest_body_mac(&self, body: &[u8]) -> [u8; 32] {
        *self
            .manifest_body_hasher()
            .update(body)
            .finalize()
            .as_bytes()
    }

    /// [`Self::manifest_body_mac`] of a body written piece by piece.
    pub fn manifest_body_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&blake3::derive_key("vaultctl v1 manifest body", &self.root))
    }

    /// Encrypts metadata (indexes, manifest headers): XChaCha20-Poly1305,
    /// output = 24-byte random nonce || ciphertext+tag.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(SEAL_NONCE + plaintext.len() + SEAL_TAG);
        buf.extend_from_slice(&[0u8; SEAL_NONCE]);
        buf.extend_from_slice(plaintext);
        self.seal_in_place(buf, 0)
    }

    /// [`seal`](Self::seal), where it lies, of the plaintext that follows
    /// [`SEAL_NONCE`] bytes of room at offset `at` of `buf` (bytes before
    /// `at` are left alone): no second copy of a large object (an index or
    /// a manifest header of millions of blobs).
    pub fn seal_in_place(&self, mut buf: Vec<u8>, at: usize) -> Vec<u8> {
        use chacha20poly1305::aead::AeadInPlace;
        assert!(buf.len() >= at + SEAL_NONCE, "no room for the nonce");
        let cipher = XChaCha20Poly1305::new((&self.metadata).into());
        let mut nonce = [0u8; SEAL_NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let tag = cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), b"", &mut buf[at + SEAL_NONCE..])
            .expect("encryption cannot fail");
        buf[at..at + SEAL_NONCE].copy_from_slice(&nonce);
        buf.extend_from_slice(&tag);
        buf
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < 24 + 16 {
            anyhow::bail!("sealed metadata is truncated ({} bytes)", sealed.len());
        }
        let cipher = XChaCha20Poly1305::new((&self.metadata).into());
        cipher.decrypt(XNonce::from_slice(&sealed[..24]), &sealed[24..]).map_err(|_| {
            Failure::new(
                ExitStatus::Key,
                "metadata could not be authenticated with this dedup key (wrong key, or the object is damaged).",
            )
            .with_remedy("Check dedup_key_file belongs to this repository; run `vaultctl verify --read-data`.")
            .into()
        })
    }

    /// Reads a dedup key file (64 hex characters).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == 32).ok_or_else(|| {
            Failure::new(ExitStatus::Usage, format!("the dedup key file {} is not 64 hex characters.", path.display()))
                .with_remedy("Restore it from your key backup, or recreate it with `vaultctl key dedup --output FILE` on a host that has the identity.")
        })?;
        let mut root = [0u8; 32];
        root.copy_from_slice(&bytes);
        Ok(Self::from_root(root))
    }

    /// Writes the key file with mode 0600, refusing to overwrite.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_secret_file(path, format!("{}\n", hex::encode(self.root)).as_bytes())
    }
}

/// Creates a file readable only by its owner; refuses to overwrite one.
/// Written durably (temporary file, fsync, no-clobber link, directory
/// fsyncs): a power cut never loses a new key nor leaves an empty one.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> Result<()> {
    let written = crate::storage::write_new_file_durably(path, contents, 0o600)
        .with_context(|| format!("cannot create {}", path.display()))?;
    if !written {
        return Err(Failure::new(
            ExitStatus::Usage,
            format!(
                "{} already exists; vaultctl never overwrites a key.",
                path.display()
            ),
        )
        .with_remedy(
            "Choose another --output path, or move the old key away yourself if you are sure.",
        )
        .into());
    }
    Ok(())
}

/// A public key that packs and manifest bodies are encrypted to.
#[derive(Clone)]
pub enum Recipient {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl Recipient {
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.starts_with("age1") {
            return age::x25519::Recipient::from_str(s)
                .map(Recipient::X25519)
                .map_err(|e| {
                    Failure::new(
                        ExitStatus::Usage,
                        format!("invalid age recipient \"{s}\": {e}"),
                    )
                    .into()
                });
        }
        if s.starts_with("ssh-") {
            return age::ssh::Recipient::from_str(s)
                .map(Recipient::Ssh)
                .map_err(|e| {
                    Failure::new(
                        ExitStatus::Usage,
                        format!("invalid ssh recipient \"{s}\": {e:?}"),
                    )
                    .with_remedy("Use an ssh-ed25519 or ssh-rsa public key line.")
                    .into()
                });
        }
        fail(
            ExitStatus::Usage,
            format!("\"{s}\" is not a recipient."),
            "Recipients are age public keys (age1…) or ssh public keys (ssh-ed25519 AAAA…).",
        )
    }

    fn as_dyn(&self) -> &dyn age::Recipient {
        match self {
            Recipient::X25519(r) => r,
            Recipient::Ssh(r) => r,
        }
    }
}

/// A private key that opens packs and manifest bodies.
pub enum Identity {
    X25519(age::x25519::Identity),
    Ssh(age::ssh::Identity),
}

impl Identity {
    fn as_dyn(&self) -> &dyn age::Identity {
        match self {
            Identity::X25519(i) => i,
            Identity::Ssh(i) => i,
        }
    }

    pub fn to_recipient(&self) -> Option<Recipient> {
        match self {
            Identity::X25519(i) => Some(Recipient::X25519(i.to_public())),
            Identity::Ssh(i) => age::ssh::Recipient::try_from(i.clone())
                .ok()
                .map(Recipient::Ssh),
        }
    }
}

/// Loads identities from an age identity file or an OpenSSH private key.
pub fn load_identities(path: &Path) -> Result<Vec<Identity>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::new(
            ExitStatus::Key,
            format!("cannot read the identity file {}: {e}.", path.display()),
        )
        .with_remedy(
            "Reading backups needs the identity; check keys.identity_file and its permissions.",
        )
    })?;
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        let id = age::ssh::Identity::from_buffer(text.as_bytes(), Some(path.display().to_string()))
            .with_context(|| format!("cannot parse the ssh key {}", path.display()))?;
        if let age::ssh::Identity::Encrypted(_) = id {
            return fail(
                ExitStatus::Key,
                format!("the ssh key {} is passphrase-protected.", path.display()),
                "vaultctl runs unattended and cannot ask for a passphrase: use an age identity or an unencrypted key file readable only by root.",
            );
        }
        return Ok(vec![Identity::Ssh(id)]);
    }
    let mut out = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let id = age::x25519::Identity::from_str(line).map_err(|e| {
            Failure::new(ExitStatus::Key, format!("the identity file {} holds an invalid key: {e}.", path.display()))
                .with_remedy("An identity line starts with AGE-SECRET-KEY-1; create one with `vaultctl key generate`.")
        })?;
        out.push(Identity::X25519(id));
    }
    if out.is_empty() {
        return fail(
            ExitStatus::Key,
            format!("the identity file {} holds no key.", path.display()),
            "Create one with `vaultctl key generate --output FILE`.",
        );
    }
    Ok(out)
}

/// Generates a new X25519 identity file (0600); returns the public recipient.
pub fn generate_identity(path: &Path) -> Result<String> {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let created = time::OffsetDateTime::now_utc();
    let text = format!(
        "# created: {}\n# public key: {public}\n{}\n",
        created
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        id.to_string().expose_secret()
    );
    write_secret_file(path, text.as_bytes())?;
    Ok(public)
}

/// Encrypts a whole buffer to the recipients (a standard age file).
pub fn encrypt(recipients: &[Recipient], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(plaintext.len() + 512);
    let mut w = encrypt_writer(recipients, &mut out)?;
    w.write_all(plaintext)?;
    w.finish()?;
    Ok(out)
}

/// Opens a streaming age writer over `out`.
pub fn encrypt_writer<W: Write>(
    recipients: &[Recipient],
    out: W,
) -> Result<age::stream::StreamWriter<W>> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_dyn()))
        .map_err(|e| anyhow::anyhow!("cannot set up encryption: {e}"))?;
    Ok(enc.wrap_output(out)?)
}

/// Decrypts a whole age file. Fails with exit 12 when no identity matches.
pub fn decrypt(identities: &[Identity], ciphertext: &[u8]) -> Result<Vec<u8>> {
    let mut r = decrypt_reader(identities, ciphertext)?;
    let mut out = Vec::with_capacity(ciphertext.len());
    r.read_to_end(&mut out).map_err(damaged_part_way)?;
    Ok(out)
}

/// An age stream that stopped decrypting after its start: the object is
/// damaged.
pub fn damaged_part_way(e: impl std::fmt::Display) -> Failure {
    Failure::new(ExitStatus::Failure, format!("decryption failed part-way: {e} (the object is damaged)."))
        .with_remedy("Run `vaultctl verify --read-data` to find the damaged pack; restore from another target with --target.")
}

pub fn decrypt_reader<R: Read>(
    identities: &[Identity],
    input: R,
) -> Result<age::stream::StreamReader<R>> {
    let dec = age::Decryptor::new(input).map_err(|e| {
        Failure::new(
            ExitStatus::Failure,
            format!("not a readable age file: {e}."),
        )
        .with_remedy("The object is damaged; run `vaultctl verify --read-data`.")
    })?;
    dec.decrypt(identities.iter().map(|i| i.as_dyn())).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => Failure::new(
            ExitStatus::Key,
            "the identity cannot decrypt this repository's data (no matching key).",
        )
        .with_remedy("Use the identity whose public key is in keys.recipients (keys.identity_file or --identity).")
        .into(),
        other => anyhow::Error::from(
            Failure::new(ExitStatus::Failure, format!("cannot decrypt: {other}."))
                .with_remedy("The object may be damaged; run `vaultctl verify --read-data`."),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_roundtrip_and_tamper() {
        let k = DedupKey::generate();
        let s = k.seal(b"hello");
        assert_eq!(k.open(&s).unwrap(), b"hello");
        let mut bad = s.clone();
        bad[30] ^= 1;
        assert!(k.open(&bad).is_err());
        assert!(DedupKey::generate().open(&s).is_err());
        // Sealed in place: the same format, the room for the nonce used.
        let mut buf = vec![0u8; SEAL_NONCE];
        buf.extend_from_slice(&[7u8; 100_000]);
        let s = k.seal_in_place(buf, 0);
        assert_eq!(s.len(), SEAL_NONCE + 100_000 + SEAL_TAG);
        assert_eq!(k.open(&s).unwrap(), vec![7u8; 100_000]);
    }

    #[test]
    fn age_roundtrip() {
        let id = age::x25519::Identity::generate();
        let r = vec![Recipient::X25519(id.to_public())];
        let ct = encrypt(&r, b"data").unwrap();
        assert_eq!(decrypt(&[Identity::X25519(id)], &ct).unwrap(), b"data");
        let other = Identity::X25519(age::x25519::Identity::generate());
        let err = decrypt(&[other], &ct).unwrap_err();
        assert_eq!(crate::error::exit_status(&err), ExitStatus::Key);
    }
}
