//! The one-pass tenant export: every table's rows, read once in one COPY
//! ordered by the tenant column (byte order), spilled to an unnamed
//! temporary file, then merged tenant by tenant into the same artifact
//! bytes the per-tenant export writes (a COPY block per table, in
//! foreign-key order, for every tenant).
//!
//! Memory is bounded whatever the number of tenants or rows: one read
//! buffer per table and the row at its head.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use anyhow::{anyhow, Result};

use crate::error::{ExitStatus, Failure};

/// The value of field `index` (0-based) of one COPY text row (without or
/// with its trailing newline), unescaped: `None` for SQL NULL (`\N`) or a
/// row with fewer fields.
pub fn field(row: &[u8], index: usize) -> Option<Vec<u8>> {
    let row = row.strip_suffix(b"\n").unwrap_or(row);
    let raw = row.split(|&b| b == b'\t').nth(index)?;
    if raw == b"\\N" {
        return None;
    }
    Some(unescape(raw))
}

/// Undoes COPY's text escapes: `\b \f \n \r \t \v \\`, `\NNN` (octal) and
/// `\xHH` (hex); any other escaped character stands for itself.
fn unescape(raw: &[u8]) -> Vec<u8> {
    if !raw.contains(&b'\\') {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' || i == raw.len() {
            out.push(b);
            continue;
        }
        let e = raw[i];
        i += 1;
        match e {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + u32::from(raw[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + (raw[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    out
}

/// One table's spilled rows (sorted by the tenant field, byte order) and
/// the row at its head.
pub struct Spill {
    name: String,
    reader: Box<dyn BufRead + Send>,
    field: usize,
    row: Vec<u8>,
    /// The head row's tenant (`None`: NULL); meaningless at the end.
    key: Option<Vec<u8>>,
    /// The last non-NULL tenant seen: the order is checked as the rows go by.
    last: Option<Vec<u8>>,
    eof: bool,
}

impl Spill {
    /// `file` holds COPY text rows written from its start; they are read
    /// from the beginning. `field` is the tenant column's position.
    pub fn from_file(name: String, mut file: File, field: usize) -> Result<Spill> {
        file.seek(SeekFrom::Start(0))?;
        Spill::new(
            name,
            Box::new(BufReader::with_capacity(256 * 1024, file)),
            field,
        )
    }

    pub fn new(name: String, reader: Box<dyn BufRead + Send>, field: usize) -> Result<Spill> {
        let mut s = Spill {
            name,
            reader,
            field,
            row: Vec::new(),
            key: None,
            last: None,
            eof: false,
        };
        s.advance()?;
        Ok(s)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn advance(&mut self) -> Result<()> {
        self.row.clear();
        if self.reader.read_until(b'\n', &mut self.row)? == 0 {
            self.eof = true;
            self.key = None;
            return Ok(());
        }
        self.key = field(&self.row, self.field);
        if let Some(k) = &self.key {
            if self.last.as_ref().is_some_and(|l| l > k) {
                return Err(anyhow!(
                    "the rows of {} did not come in the tenant column's byte order; back up with --tenant per tenant instead",
                    self.name
                ));
            }
            self.last.clone_from(&self.key);
        }
        Ok(())
    }

    /// Appends the rows of `tenant` to `out` until it holds at least
    /// `limit` bytes, skipping rows of smaller tenants (not chosen, or not
    /// in the tenants table) and NULLs. Returns the rows appended and
    /// whether this tenant's rows are done.
    pub fn take(&mut self, tenant: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(u64, bool)> {
        let mut rows = 0;
        loop {
            if self.eof {
                return Ok((rows, true));
            }
            let order = match &self.key {
                None => Ordering::Less,
                Some(k) => k.as_slice().cmp(tenant),
            };
            match order {
                Ordering::Less => self.advance()?,
                Ordering::Equal => {
                    if out.len() >= limit {
                        return Ok((rows, false));
                    }
                    out.extend_from_slice(&self.row);
                    rows += 1;
                    self.advance()?;
                }
                Ordering::Greater => return Ok((rows, true)),
            }
        }
    }
}

/// An unnamed temporary file in `dir` (created if missing).
pub fn spill_file(dir: &Path) -> Result<File> {
    let failed = |e: std::io::Error| {
        anyhow::Error::new(
            Failure::new(
                ExitStatus::Failure,
                format!(
                    "the tenant export cannot spill its tables in {}: {e}.",
                    dir.display()
                ),
            )
            .with_remedy("Make that directory (beside the catalog) writable with room for the text of the tenant tables, or back up a few tenants with --tenant ID."),
        )
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    // Unnamed: nothing is left behind, whatever happens.
    tempfile::tempfile_in(dir).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spill(rows: &str, field: usize) -> Spill {
        Spill::new(
            "t".into(),
            Box::new(std::io::Cursor::new(rows.as_bytes().to_vec())),
            field,
        )
        .unwrap()
    }

    fn take_all(s: &mut Spill, tenant: &str) -> (String, u64) {
        let mut out = Vec::new();
        let mut n = 0;
        loop {
            let (r, done) = s.take(tenant.as_bytes(), &mut out, 8).unwrap();
            n += r;
            if done {
                return (String::from_utf8(out).unwrap(), n);
            }
        }
    }

    #[test]
    fn fields_are_unescaped() {
        assert_eq!(field(b"1\tacme\tx\n", 1).unwrap(), b"acme");
        assert_eq!(field(b"1\tacme", 1).unwrap(), b"acme");
        assert_eq!(field(b"a\\tb\tc", 0).unwrap(), b"a\tb");
        assert_eq!(
            field(b"\\\\x\\n\\r\\b\\f\\v\\101\\x41\\q", 0).unwrap(),
            b"\\x\n\r\x08\x0c\x0bAAq"
        );
        assert_eq!(field(b"1\t\\N\tz\n", 1), None);
        // A literal backslash-N is escaped as \\N, not NULL.
        assert_eq!(field(b"\\\\N", 0).unwrap(), b"\\N");
        assert_eq!(field(b"1\t\tz", 1).unwrap(), b"");
        assert_eq!(field(b"1\t2", 5), None);
        // Multi-byte UTF-8 passes through.
        assert_eq!(
            field("x\tzürich\n".as_bytes(), 1).unwrap(),
            "zürich".as_bytes()
        );
    }

    #[test]
    fn merge_takes_each_tenants_rows_and_skips_the_rest() {
        // Sorted by field 1; "aa" is not a chosen tenant, NULLs sort last.
        let mut s = spill(
            "1\taa\tx\n2\tb\\tc\ty\n3\tbb\tz\n4\tbb\tw\n5\tc\tv\n6\t\\N\tu\n",
            1,
        );
        assert_eq!(take_all(&mut s, "a"), (String::new(), 0));
        // Tenant "b\tc" (escaped in the row) sorts before "bb".
        assert_eq!(take_all(&mut s, "b\tc"), ("2\tb\\tc\ty\n".into(), 1));
        assert_eq!(take_all(&mut s, "bb"), ("3\tbb\tz\n4\tbb\tw\n".into(), 2));
        // A tenant with no rows between two with rows.
        assert_eq!(take_all(&mut s, "bc"), (String::new(), 0));
        assert_eq!(take_all(&mut s, "c"), ("5\tc\tv\n".into(), 1));
        assert_eq!(take_all(&mut s, "d"), (String::new(), 0));
    }

    #[test]
    fn byte_order_not_collation_order() {
        // Byte order: "B" < "a" < "b" < "é" (0xC3...).
        let mut s = spill("1\tB\n2\ta\n3\tb\n4\té\n", 1);
        for (t, row) in [
            ("B", "1\tB\n"),
            ("a", "2\ta\n"),
            ("b", "3\tb\n"),
            ("é", "4\té\n"),
        ] {
            assert_eq!(take_all(&mut s, t).0, row);
        }
    }

    #[test]
    fn a_row_out_of_order_fails() {
        let mut s = spill("1\tb\n2\ta\n", 1);
        let mut out = Vec::new();
        let e = s.take(b"b", &mut out, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("byte order"), "{e}");
    }

    #[test]
    fn the_limit_splits_a_tenants_rows() {
        let mut s = spill("1\ta\n2\ta\n3\ta\n", 1);
        let mut out = Vec::new();
        let (n, done) = s.take(b"a", &mut out, 1).unwrap();
        assert_eq!((n, done), (1, false));
        let (n, done) = s.take(b"a", &mut out, 1 << 20).unwrap();
        assert_eq!((n, done), (2, true));
        assert_eq!(out, b"1\ta\n2\ta\n3\ta\n");
    }
}
