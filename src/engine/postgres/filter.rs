//! Reading plain dumps and tenant exports as they stream by: COPY blocks
//! (with the tenant filter of selective restores), `SET` lines a target
//! server does not know, and pg_dump's own meta-command lines.
//!
//! A tenant export uses the same text as a plain dump's data section:
//! `COPY schema.table (columns) FROM stdin;`, rows in COPY text format,
//! `\.`. So every restore path reads both kinds of artifact the same way.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::BufRead;

use anyhow::Result;

use super::sqlscan::{self, Dropped, Line};
use super::TableName;
use crate::config::TenantSpec;

/// `COPY schema.table (a, b) FROM stdin;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyHeader {
    pub table: TableName,
    pub columns: Vec<String>,
}

/// Reads one identifier (bare or double-quoted) from the front of `s`.
pub(crate) fn ident(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if rest[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                } else {
                    return Some((out, &rest[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        None
    } else {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        Some((s[..end].to_lowercase(), &s[end..]))
    }
}

pub fn parse_copy_header(line: &str) -> Option<CopyHeader> {
    let rest = line.strip_prefix("COPY ")?;
    let (first, mut rest) = ident(rest)?;
    let table = if let Some(r) = rest.strip_prefix('.') {
        let (name, r) = ident(r)?;
        rest = r;
        TableName {
            schema: first,
            name,
        }
    } else {
        TableName {
            schema: "public".into(),
            name: first,
        }
    };
    let mut columns = Vec::new();
    let mut r = rest.trim_start();
    if let Some(inner) = r.strip_prefix('(') {
        r = inner;
        loop {
            let (c, after) = ident(r)?;
            columns.push(c);
            let after = after.trim_start();
            if let Some(a) = after.strip_prefix(',') {
                r = a;
            } else if let Some(a) = after.strip_prefix(')') {
                r = a;
                break;
            } else {
                return None;
            }
        }
    }
    if !r.trim_start().starts_with("FROM stdin") {
        return None;
    }
    Some(CopyHeader { table, columns })
}

/// The `idx`th field of a COPY text row, unescaped; `None` for NULL.
pub fn copy_field(row: &[u8], idx: usize) -> Option<Vec<u8>> {
    let field = row.split(|&b| b == b'\t').nth(idx)?;
    if field == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 1 < field.len() {
            i += 1;
            out.push(match field[i] {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 8,
                b'f' => 12,
                b'v' => 11,
                c => c,
            });
        } else {
            out.push(field[i]);
        }
        i += 1;
    }
    Some(out)
}

/// Which rows of one COPY block to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowFilter {
    All,
    /// Keep rows whose field at this index is one of the tenants.
    Field(usize),
    /// Skip the block (selective merge: a table without the tenant column).
    None,
}

/// Selects tenants' rows: tables carrying the tenant column by that column,
/// the tenants table by its key.
#[derive(Debug, Clone)]
pub struct TenantFilter {
    pub spec: TenantSpec,
    pub ids: HashSet<Vec<u8>>,
    /// Keep tables without the tenant column (a full restore keeps global
    /// tables; a merge skips them).
    pub keep_global: bool,
}

impl TenantFilter {
    fn is_tenants_table(&self, t: &TableName) -> bool {
        match self.spec.table.split_once('.') {
            Some((s, n)) => t.schema == s && t.name == n,
            None => t.name == self.spec.table,
        }
    }

    pub fn for_header(&self, h: &CopyHeader) -> RowFilter {
        if self.is_tenants_table(&h.table) {
            if let Some(i) = h.columns.iter().position(|c| *c == self.spec.key) {
                return RowFilter::Field(i);
            }
        }
        match h.columns.iter().position(|c| *c == self.spec.column) {
            Some(i) => RowFilter::Field(i),
            None if self.keep_global => RowFilter::All,
            None => RowFilter::None,
        }
    }

    pub fn keeps(&self, filter: &RowFilter, row: &[u8]) -> bool {
        match filter {
            RowFilter::All => true,
            RowFilter::None => false,
            RowFilter::Field(i) => copy_field(row, *i).is_some_and(|v| self.ids.contains(&v)),
        }
    }
}

/// What one walk over a dump saw.
pub enum Event<'a> {
    /// A line of SQL (with its newline), checked by the [`sqlscan`]
    /// scanner; whether it is exactly one statement (only such a line may
    /// be left out); the offsets just past each `;` that ends a statement
    /// on it; its line number (1-based).
    Line(&'a [u8], bool, &'a [usize], u64),
    /// A line that must not be forwarded (pg_dump's `\restrict` lines, its
    /// `BEGIN;`/`COMMIT;` around large objects).
    Dropped(&'a [u8], Dropped),
    CopyStart(&'a CopyHeader, &'a RowFilter),
    /// A kept row (with its newline).
    Row(&'a [u8]),
    /// End of a COPY block: rows kept, rows left out.
    CopyEnd(u64, u64),
}

/// Walks a dump or tenant export line by line through the [`sqlscan`]
/// scanner, calling `f` for each event. Reads to the end of `reader` (which
/// checks the stream's hash there). A line the scanner refuses ends the walk
/// with its [`sqlscan::Refusal`] before `f` sees it.
pub fn walk(
    mut reader: impl BufRead,
    scan: sqlscan::Options,
    tenants: Option<&TenantFilter>,
    mut f: impl FnMut(Event<'_>) -> Result<()>,
) -> Result<()> {
    let mut scanner = sqlscan::Scanner::new(scan);
    let mut line = Vec::with_capacity(64 * 1024);
    let mut copy: Option<(RowFilter, u64, u64)> = None;
    loop {
        if !scanner.read_line(&mut reader, &mut line)? {
            scanner.finish()?;
            return Ok(());
        }
        match scanner.line(&line)? {
            Line::Sql { whole, ends } => f(Event::Line(&line, whole, &ends, scanner.line_no()))?,
            Line::Dropped(d) => f(Event::Dropped(&line, d))?,
            Line::CopyStart(h) => {
                let filter = tenants.map(|t| t.for_header(&h)).unwrap_or(RowFilter::All);
                f(Event::CopyStart(&h, &filter))?;
                copy = Some((filter, 0, 0));
            }
            Line::CopyData => {
                let (filter, kept, skipped) = copy.as_mut().expect("inside COPY data");
                let body = line.strip_suffix(b"\n").unwrap_or(&line);
                if tenants.is_none_or(|t| t.keeps(filter, body)) {
                    *kept += 1;
                    f(Event::Row(&line))?;
                } else {
                    *skipped += 1;
                }
            }
            Line::CopyEnd => {
                let (_, k, s) = copy.take().expect("inside COPY data");
                f(Event::CopyEnd(k, s))?;
            }
        }
    }
}

/// What a restore left out or changed.
#[derive(Debug, Default, serde::Serialize)]
pub struct FilterReport {
    /// Settings the target server does not know, whose `SET` lines were dropped.
    pub dropped_settings: BTreeSet<String>,
    /// pg_dump's psql meta-commands (`\restrict`, `\unrestrict`), which are
    /// never forwarded.
    pub dropped_meta_commands: BTreeSet<String>,
    /// Rows per table written.
    pub rows: BTreeMap<String, u64>,
    /// Rows per table left out by the tenant filter.
    pub rows_left_out: BTreeMap<String, u64>,
}

/// The setting a dump line `SET name = value;` sets.
pub(crate) fn set_line_name(line: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(line).ok()?;
    let rest = s.strip_prefix("SET ")?;
    let name = rest.split([' ', '=']).next()?;
    if name.is_empty()
        || !rest.trim_end().ends_with(';')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return None;
    }
    Some(name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let h = parse_copy_header("COPY public.order_items (id, tenant_id, \"Qty\") FROM stdin;\n")
            .unwrap();
        assert_eq!(
            h.table,
            TableName {
                schema: "public".into(),
                name: "order_items".into()
            }
        );
        assert_eq!(h.columns, vec!["id", "tenant_id", "Qty"]);
        let h = parse_copy_header("COPY \"we\"\"ird\".t FROM stdin;").unwrap();
        assert_eq!(h.table.schema, "we\"ird");
        assert!(h.columns.is_empty());
        assert!(parse_copy_header("COPY t TO stdout;").is_none());
    }

    #[test]
    fn fields() {
        assert_eq!(copy_field(b"1\tacme\\tx\t\\N", 1).unwrap(), b"acme\tx");
        assert_eq!(copy_field(b"1\tacme\t\\N", 2), None);
    }

    fn spec() -> TenantSpec {
        TenantSpec {
            table: "tenants".into(),
            key: "id".into(),
            column: "tenant_id".into(),
        }
    }

    #[test]
    fn tenant_rows_and_truncation() {
        let dump = "\\restrict abc\nCREATE TABLE t ();\n\
COPY public.tenants (id, name) FROM stdin;\nacme\tAcme\nglobex\tGlobex\n\\.\n\
COPY public.orders (id, tenant_id) FROM stdin;\n1\tacme\n2\tglobex\n3\tacme\n\\.\n\
COPY public.plans (id) FROM stdin;\n1\n\\.\n\\unrestrict abc\n";
        let tf = TenantFilter {
            spec: spec(),
            ids: [b"acme".to_vec()].into(),
            keep_global: true,
        };
        let mut rows = Vec::new();
        let mut ends = Vec::new();
        let mut dropped = 0;
        walk(
            dump.as_bytes(),
            sqlscan::Options::default(),
            Some(&tf),
            |ev| {
                match ev {
                    Event::Row(r) => rows.push(String::from_utf8(r.to_vec()).unwrap()),
                    Event::CopyEnd(k, s) => ends.push((k, s)),
                    Event::Dropped(..) => dropped += 1,
                    _ => {}
                }
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(rows, ["acme\tAcme\n", "1\tacme\n", "3\tacme\n", "1\n"]);
        assert_eq!(ends, [(1, 1), (2, 1), (1, 0)]);
        assert_eq!(dropped, 2);
        let r = walk(
            &b"COPY public.t (a) FROM stdin;\n1\n"[..],
            sqlscan::Options::default(),
            None,
            |_| Ok(()),
        );
        assert!(r.is_err());
    }

    #[test]
    fn set_lines() {
        assert_eq!(
            set_line_name(b"SET transaction_timeout = 0;").as_deref(),
            Some("transaction_timeout")
        );
        assert_eq!(
            set_line_name(b"SET foo = 'x;\n\\! id';").as_deref(),
            Some("foo")
        );
        assert_eq!(set_line_name(b"SET foo = 1"), None);
        assert_eq!(set_line_name(b"SELECT 1;"), None);
    }
}
