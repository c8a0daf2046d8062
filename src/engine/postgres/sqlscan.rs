//! A streaming scanner for the plain SQL of a postgres backup: it follows
//! psql's lexer (`src/fe_utils/psqlscan.l`) line by line — quoted strings
//! (`'…'` with `''`, `E'…'` with backslash escapes, `B'…'`, `X'…'`,
//! `U&'…'`, and psql's quote continuation), double-quoted identifiers,
//! dollar quoting, `--` and nested `/* */` comments, parentheses and psql's
//! `BEGIN … END` counting in `CREATE FUNCTION`, statement ends — and COPY
//! data after a `COPY … FROM stdin;` line up to its `\.` line.
//!
//! Its one job is the guarantee that **no psql meta-command from a backup
//! ever runs**: any backslash that psql would read as the start of a
//! meta-command (outside quotes, comments and COPY data) refuses the whole
//! stream before that line is forwarded. The only exception are pg_dump's
//! own `\restrict KEY` line before the first statement and the matching
//! `\unrestrict KEY` at the end, which are reported as [`Line::Dropped`] so
//! that the caller never forwards them.
//!
//! Being conservative where the scanner and psql could disagree:
//!
//! * COPY data starts only after a line that is exactly pg_dump's
//!   `COPY name [(columns)] FROM stdin;`, at the start of a statement. Any
//!   other statement that begins with COPY is refused: it could put psql
//!   into COPY-data mode while the scanner reads SQL. The opposite case —
//!   the scanner reads COPY data that psql reads as SQL — cannot happen:
//!   psql runs with `ON_ERROR_STOP=1` and without a psqlrc (`-X`), so a
//!   `COPY … FROM stdin` that psql does not start fails and psql stops
//!   before it reads the next line.
//! * COPY data ends exactly where psql ends it: a line that is `\.` (or
//!   `\.` followed by a carriage return). NUL bytes are refused anywhere
//!   (psql's C strings would cut a line at one and lose track of lines).
//! * psql lexes a line differently with `standard_conforming_strings` off,
//!   in a client encoding such as SJIS or GBK (where a quote or backslash
//!   byte can be part of a character), or in an older version (no `BEGIN
//!   ATOMIC` counting before 14, other number tokens since 16). SQL that
//!   executes during the restore could switch the first two at any time,
//!   so wherever those readings could differ the scanner reports an
//!   [`Ambiguity`]. That is a refusal unless psql itself enforces a
//!   `\restrict` key vaultctl chose ([`Options::restricted`]), in which case
//!   psql refuses every meta-command on its own and the scanner's reading
//!   only needs to be right for the usual case.
//! * psql replaces `:NAME` with the value of its variable NAME; a reference
//!   to one of psql's own (upper-case) variables is refused.
//! * Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, …) is refused, so a
//!   stream cannot commit the restore's transaction early; pg_dump's own
//!   `BEGIN;` / `COMMIT;` lines around large objects are dropped instead.
//!
//! Memory is bounded by one line ([`MAX_LINE`]); statements are never
//! buffered. COPY data lines, the bulk of a dump, cost one `memchr` for NUL
//! and a comparison with `\.`.

use std::io::BufRead;

use super::filter::CopyHeader;
use super::TableName;

/// The longest line accepted (PostgreSQL cannot take a longer COPY line or
/// statement either).
pub const MAX_LINE: usize = 1 << 30;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// psql enforces a `\restrict` key that vaultctl chose (and the stream
    /// cannot know), so it refuses every meta-command itself — or no psql
    /// reads the stream at all: an [`Ambiguity`] is then followed by the
    /// scanner's usual reading instead of refusing the stream.
    pub restricted: bool,
}

/// What one line of the stream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// SQL text. `ends`: the byte offsets just past each `;` that ends a
    /// statement on this line; `whole`: the line is exactly one statement
    /// (it starts one and its last byte ends it), so leaving the whole line
    /// out keeps the scanner and psql in step.
    Sql { ends: Vec<usize>, whole: bool },
    /// A `COPY … FROM stdin;` line: the lines up to `\.` are its data.
    CopyStart(CopyHeader),
    /// A line of COPY data.
    CopyData,
    /// The `\.` line that ends COPY data.
    CopyEnd,
    /// A line the caller must not forward.
    Dropped(Dropped),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// pg_dump's `\restrict KEY` before the first statement.
    Restrict,
    /// pg_dump's `\unrestrict KEY` (the same key) at the end.
    Unrestrict,
    /// pg_dump's `BEGIN;` line (large objects): the restore runs in one
    /// transaction already.
    Begin,
    /// pg_dump's `COMMIT;` line (large objects).
    Commit,
}

/// Text that psql could read differently from the scanner (see the module
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambiguity {
    /// A backslash right before a quote in a string literal: where the
    /// literal ends depends on standard_conforming_strings and on how the
    /// psql version reads its prefix.
    Quote,
    /// A quote, backslash or delimiter right after a non-ASCII byte: in a
    /// client encoding such as SJIS, BIG5 or GBK psql reads it as part of a
    /// character.
    Encoding,
    /// A non-ASCII byte outside quotes (pg_dump quotes every such name).
    NonAscii,
    /// A non-ASCII dollar-quote tag.
    DollarTag,
    /// A `;` inside `BEGIN … END` of a CREATE FUNCTION or PROCEDURE: psql
    /// before 14 ends the statement there.
    AtomicSemicolon,
    /// A letter right after a number: psql versions split such text into
    /// tokens differently.
    NumberJunk,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    MetaCommand,
    NulByte,
    Variable,
    CopyStatement,
    TransactionControl,
    UnsafeEncoding(String),
    AfterUnrestrict,
    LineTooLong,
    Truncated(&'static str),
    Ambiguous(Ambiguity),
}

/// Why a stream was refused, and where (1-based line within the artifact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: u64,
    pub reason: Reason,
    /// The offending text, made printable and cut short.
    pub excerpt: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what: String = match &self.reason {
            Reason::MetaCommand => {
                "a psql meta-command (a backslash outside quotes, comments and COPY data)".into()
            }
            Reason::NulByte => "a NUL byte".into(),
            Reason::Variable => "a reference to a psql variable, which psql would replace".into(),
            Reason::CopyStatement => {
                "a COPY statement that is not pg_dump's one-line `COPY table (columns) FROM stdin;`"
                    .into()
            }
            Reason::TransactionControl => {
                "a transaction-control statement, which would end the restore's transaction".into()
            }
            Reason::UnsafeEncoding(e) => format!(
                "client encoding {e}, in which psql cannot tell a quote or backslash from part of a character"
            ),
            Reason::AfterUnrestrict => "text after pg_dump's closing \\unrestrict line".into(),
            Reason::LineTooLong => format!("a line longer than {} MiB", MAX_LINE >> 20),
            Reason::Truncated(w) => format!("the end of the stream {w}"),
            Reason::Ambiguous(a) => format!(
                "{}, which psql can read differently from vaultctl's check (only a psql that enforces \\restrict — 15.14, 16.10, 17.6, 18 or newer — restores it safely)",
                match a {
                    Ambiguity::Quote => "a backslash right before a quote in a string literal",
                    Ambiguity::Encoding => "a quote, backslash or delimiter right after a non-ASCII byte",
                    Ambiguity::NonAscii => "a non-ASCII byte outside quotes",
                    Ambiguity::DollarTag => "a non-ASCII dollar-quote tag",
                    Ambiguity::AtomicSemicolon => "a `;` inside BEGIN … END of a CREATE FUNCTION or PROCEDURE",
                    Ambiguity::NumberJunk => "a letter right after a number",
                }
            ),
        };
        write!(f, "line {}: {what}", self.line)?;
        if !self.excerpt.is_empty() {
            write!(f, ": `{}`", self.excerpt)?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusal {}

/// psql's lexer states (psqlscan.l), plus INITIAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Initial,
    /// B'…'
    Xb,
    /// /* … */
    Xc,
    /// "…"
    Xd,
    /// X'…'
    Xh,
    /// '…' with standard_conforming_strings on
    Xq,
    /// after a closing quote: a continuation may follow
    Xqs,
    /// E'…' (and '…' with standard_conforming_strings off)
    Xe,
    /// $tag$ … $tag$
    Xdolq,
    /// U&"…"
    Xui,
    /// U&'…'
    Xus,
}

/// Words that start a transaction-control statement.
const TX_WORDS: &[&str] = &[
    "begin",
    "start",
    "commit",
    "end",
    "rollback",
    "abort",
    "savepoint",
    "release",
    "prepare",
];

/// Client encodings in which a byte of a multibyte character can look like
/// a quote or backslash (psql's "unsafe" encodings), by normalized name.
const UNSAFE_ENCODINGS: &[&str] = &[
    "sjis",
    "shiftjis",
    "shiftjis2004",
    "mskanji",
    "win932",
    "windows932",
    "big5",
    "win950",
    "windows950",
    "gbk",
    "win936",
    "windows936",
    "cp936",
    "uhc",
    "win949",
    "windows949",
    "gb18030",
    "johab",
];

pub struct Scanner {
    opts: Options,
    line_no: u64,
    st: St,
    before_stop: St,
    std_strings: bool,
    paren: u32,
    begin: u32,
    ident_count: u32,
    idents: [u8; 4],
    xcdepth: u32,
    dolq: Vec<u8>,
    /// The statement so far holds more than whitespace and `--` comments.
    stmt_nonempty: bool,
    /// The statement's first token (not a comment) has been seen.
    first_token_seen: bool,
    in_copy: bool,
    statements: u64,
    restrict_key: Option<Vec<u8>>,
    unrestricted: bool,
}

impl Scanner {
    pub fn new(opts: Options) -> Scanner {
        Scanner {
            opts,
            line_no: 0,
            st: St::Initial,
            before_stop: St::Initial,
            std_strings: true,
            paren: 0,
            begin: 0,
            ident_count: 0,
            idents: [0; 4],
            xcdepth: 0,
            dolq: Vec::new(),
            stmt_nonempty: false,
            first_token_seen: false,
            in_copy: false,
            statements: 0,
            restrict_key: None,
            unrestricted: false,
        }
    }

    /// The number of the last line scanned (1-based).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Reads the next line (with its `\n`) into `buf`; `Ok(false)` at the
    /// end of the stream. Refuses a line longer than [`MAX_LINE`].
    pub fn read_line(&self, r: &mut impl BufRead, buf: &mut Vec<u8>) -> anyhow::Result<bool> {
        buf.clear();
        loop {
            let avail = match r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(anyhow::Error::new(e).context("reading the backup stream failed"))
                }
            };
            if avail.is_empty() {
                return Ok(!buf.is_empty());
            }
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if buf.len() + take > MAX_LINE {
                return Err(Refusal {
                    line: self.line_no + 1,
                    reason: Reason::LineTooLong,
                    excerpt: String::new(),
                }
                .into());
            }
            buf.extend_from_slice(&avail[..take]);
            r.consume(take);
            if done {
                return Ok(true);
            }
        }
    }

    /// Scans one line (with its trailing `\n`, which only the last line of
    /// a stream may lack).
    pub fn line(&mut self, line: &[u8]) -> Result<Line, Refusal> {
        self.line_no += 1;
        if let Some(p) = memchr::memchr(0, line) {
            return Err(self.refusal(Reason::NulByte, line, p));
        }
        if self.in_copy {
            if line == b"\\.\n" || line == b"\\.\r\n" {
                self.in_copy = false;
                return Ok(Line::CopyEnd);
            }
            return Ok(Line::CopyData);
        }
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if self.unrestricted {
            let t = body.trim_ascii_start();
            if !(t.is_empty() || t.starts_with(b"--")) {
                return Err(self.refusal(Reason::AfterUnrestrict, body, 0));
            }
        }
        if self.clean() {
            if body.starts_with(b"\\restrict ") || body.starts_with(b"\\unrestrict ") {
                return self.restrict_line(body);
            }
            if body.starts_with(b"COPY ") {
                if let Some(h) = parse_copy_line(body) {
                    self.in_copy = true;
                    self.statements += 1;
                    return Ok(Line::CopyStart(h));
                }
            }
            if body == b"BEGIN;" {
                self.statements += 1;
                return Ok(Line::Dropped(Dropped::Begin));
            }
            if body == b"COMMIT;" {
                self.statements += 1;
                return Ok(Line::Dropped(Dropped::Commit));
            }
            if body == b"SET standard_conforming_strings = on;" {
                self.std_strings = true;
            } else if body == b"SET standard_conforming_strings = off;" {
                self.std_strings = false;
            } else if let Some(enc) = body
                .strip_prefix(b"SET client_encoding = '")
                .and_then(|r| r.strip_suffix(b"';"))
            {
                let norm: String = enc
                    .iter()
                    .filter(|b| b.is_ascii_alphanumeric())
                    .map(|b| b.to_ascii_lowercase() as char)
                    .collect();
                if UNSAFE_ENCODINGS.contains(&norm.as_str()) {
                    return Err(self.refusal(
                        Reason::UnsafeEncoding(String::from_utf8_lossy(enc).into_owned()),
                        body,
                        0,
                    ));
                }
            }
        }
        let was_clean = self.clean();
        let ends = self.lex(body)?;
        let whole = was_clean && ends == [body.len()] && self.clean();
        Ok(Line::Sql { ends, whole })
    }

    /// Checks the end of the stream: it must not end inside COPY data, a
    /// quoted string, a comment or a statement.
    pub fn finish(&self) -> Result<(), Refusal> {
        let what = if self.in_copy {
            Some("inside COPY data (the stream is truncated)")
        } else if !matches!(self.st, St::Initial | St::Xqs) {
            Some("inside a quoted string, identifier or comment")
        } else if self.stmt_nonempty || self.paren > 0 || self.begin > 0 {
            Some("inside a statement (no closing `;`)")
        } else {
            None
        };
        match what {
            Some(w) => Err(Refusal {
                line: self.line_no,
                reason: Reason::Truncated(w),
                excerpt: String::new(),
            }),
            None => Ok(()),
        }
    }

    fn clean(&self) -> bool {
        self.st == St::Initial && !self.stmt_nonempty && self.paren == 0 && self.begin == 0
    }

    fn refusal(&self, reason: Reason, s: &[u8], at: usize) -> Refusal {
        Refusal {
            line: self.line_no,
            reason,
            excerpt: excerpt(&s[at.min(s.len())..]),
        }
    }

    fn ambiguous(&self, a: Ambiguity, s: &[u8], at: usize) -> Result<(), Refusal> {
        if self.opts.restricted {
            return Ok(());
        }
        Err(self.refusal(Reason::Ambiguous(a), s, at.saturating_sub(8)))
    }

    /// `s[p]` may be swallowed by a multibyte character in an unsafe client
    /// encoding (a lead byte eats the next byte; GB18030's four-byte form
    /// eats three after a digit).
    fn check_shadow(&self, s: &[u8], p: usize) -> Result<(), Refusal> {
        let high = |i: usize| s[i] >= 0x80;
        let digit = |i: usize| s[i].is_ascii_digit();
        let shadowed = (p >= 1 && high(p - 1))
            || (p >= 2 && high(p - 2) && digit(p - 1))
            || (p >= 3 && high(p - 3) && digit(p - 2));
        if shadowed {
            self.ambiguous(Ambiguity::Encoding, s, p)
        } else {
            Ok(())
        }
    }

    fn restrict_line(&mut self, body: &[u8]) -> Result<Line, Refusal> {
        let (restrict, key) = match body.strip_prefix(b"\\restrict ") {
            Some(k) => (true, k),
            None => (false, &body[b"\\unrestrict ".len()..]),
        };
        let well_formed =
            !key.is_empty() && key.len() <= 256 && key.iter().all(u8::is_ascii_alphanumeric);
        if well_formed {
            if restrict && self.statements == 0 && self.restrict_key.is_none() {
                self.restrict_key = Some(key.to_vec());
                return Ok(Line::Dropped(Dropped::Restrict));
            }
            if !restrict && !self.unrestricted && self.restrict_key.as_deref() == Some(key) {
                self.unrestricted = true;
                return Ok(Line::Dropped(Dropped::Unrestrict));
            }
        }
        Err(self.refusal(Reason::MetaCommand, body, 0))
    }

    /// A token other than whitespace or a `--` comment.
    fn token(&mut self) {
        self.stmt_nonempty = true;
        self.first_token_seen = true;
    }

    fn end_statement(&mut self) {
        self.stmt_nonempty = false;
        self.first_token_seen = false;
        self.ident_count = 0;
        self.statements += 1;
    }

    fn lex(&mut self, s: &[u8]) -> Result<Vec<usize>, Refusal> {
        let mut ends = Vec::new();
        let mut i = 0;
        while i < s.len() {
            i = match self.st {
                St::Initial => self.initial(s, i, &mut ends)?,
                St::Xqs => self.quote_stop(s, i)?,
                St::Xq | St::Xus | St::Xb | St::Xh => self.quoted(s, i)?,
                St::Xe => self.e_quoted(s, i)?,
                St::Xd | St::Xui => self.dquoted(s, i)?,
                St::Xc => self.c_comment(s, i)?,
                St::Xdolq => self.dollar_quoted(s, i)?,
            };
        }
        Ok(ends)
    }

    fn initial(&mut self, s: &[u8], i: usize, ends: &mut Vec<usize>) -> Result<usize, Refusal> {
        let n = s.len();
        let next = s.get(i + 1).copied();
        let c = s[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0c => Ok(i + 1),
            b'-' if next == Some(b'-') => {
                let p = i + 2 + memchr::memchr2(b'\r', b'\n', &s[i + 2..]).unwrap_or(n - i - 2);
                if p < n {
                    self.check_shadow(s, p)?;
                }
                Ok(p)
            }
            b'/' if next == Some(b'*') => {
                self.stmt_nonempty = true;
                self.xcdepth = 0;
                self.st = St::Xc;
                Ok(i + 2)
            }
            b'\\' => Err(self.refusal(Reason::MetaCommand, s, i)),
            b'\'' => {
                self.token();
                self.st = if self.std_strings { St::Xq } else { St::Xe };
                Ok(i + 1)
            }
            b'"' => {
                self.token();
                self.st = St::Xd;
                Ok(i + 1)
            }
            b'(' => {
                self.token();
                self.paren += 1;
                Ok(i + 1)
            }
            b')' => {
                self.token();
                self.paren = self.paren.saturating_sub(1);
                Ok(i + 1)
            }
            b';' => {
                self.token();
                if self.paren == 0 {
                    if self.begin == 0 {
                        ends.push(i + 1);
                        self.end_statement();
                    } else {
                        self.ambiguous(Ambiguity::AtomicSemicolon, s, i)?;
                    }
                }
                Ok(i + 1)
            }
            b':' => self.colon(s, i),
            b'$' => self.dollar(s, i),
            b'0'..=b'9' => {
                self.token();
                Ok(number_end(s, i))
            }
            c if c >= 0x80 || c.is_ascii_alphabetic() || c == b'_' => self.word(s, i),
            _ => {
                self.token();
                Ok(i + 1)
            }
        }
    }

    /// An identifier, or a string prefix (E'…', B'…', X'…', N'…', U&'…').
    fn word(&mut self, s: &[u8], i: usize) -> Result<usize, Refusal> {
        let c = s[i];
        if c >= 0x80 {
            self.ambiguous(Ambiguity::NonAscii, s, i)?;
        }
        if i > 0 && s[i - 1].is_ascii_digit() {
            // `1e'…'`, `$1end`, `0xend`: psql 16+ reads number "junk" as one
            // token where older versions split it.
            self.ambiguous(Ambiguity::NumberJunk, s, i)?;
        }
        let next = s.get(i + 1).copied();
        if c.is_ascii_alphabetic() {
            let state = match (c.to_ascii_lowercase(), next) {
                (b'e', Some(b'\'')) => Some((St::Xe, 2)),
                (b'b', Some(b'\'')) => Some((St::Xb, 2)),
                (b'x', Some(b'\'')) => Some((St::Xh, 2)),
                (b'u', Some(b'&')) => match s.get(i + 2) {
                    Some(b'\'') => Some((St::Xus, 3)),
                    Some(b'"') => Some((St::Xui, 3)),
                    // `u&` alone: psql emits the `u` without counting it
                    // as an identifier.
                    _ => Some((St::Initial, 1)),
                },
                // N'…': the `n` is eaten, the quote starts a plain string.
                (b'n', Some(b'\'')) => Some((St::Initial, 1)),
                _ => None,
            };
            if let Some((st, len)) = state {
                self.token();
                self.st = st;
                return Ok(i + len);
            }
        }
        let end = i
            + 1
            + s[i + 1..]
                .iter()
                .position(|&b| !is_ident_cont(b))
                .unwrap_or(s.len() - i - 1);
        let word = &s[i..end];
        if word[1..].iter().any(|&b| b >= 0x80) {
            self.ambiguous(Ambiguity::NonAscii, s, i)?;
        }
        if !self.first_token_seen {
            if word.eq_ignore_ascii_case(b"copy") {
                return Err(self.refusal(Reason::CopyStatement, s, i));
            }
            if TX_WORDS
                .iter()
                .any(|w| word.eq_ignore_ascii_case(w.as_bytes()))
            {
                return Err(self.refusal(Reason::TransactionControl, s, i));
            }
        }
        self.token();
        // psql's heuristic for BEGIN … END in CREATE [OR REPLACE]
        // FUNCTION|PROCEDURE, as psqlscan.l has it.
        if self.ident_count == 0 {
            self.idents = [0; 4];
        }
        let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
        if ["create", "function", "procedure", "or", "replace"]
            .iter()
            .any(|w| is(w))
            && (self.ident_count as usize) < self.idents.len()
        {
            self.idents[self.ident_count as usize] = word[0].to_ascii_lowercase();
        }
        self.ident_count += 1;
        let id = self.idents;
        if id[0] == b'c'
            && (id[1] == b'f'
                || id[1] == b'p'
                || (id[1] == b'o' && id[2] == b'r' && (id[3] == b'f' || id[3] == b'p')))
            && self.paren == 0
        {
            if is("begin") {
                self.begin += 1;
            } else if is("case") {
                if self.begin >= 1 {
                    self.begin += 1;
                }
            } else if is("end") && self.begin > 0 {
                self.begin -= 1;
            }
        }
        Ok(end)
    }

    /// `::`, `:=`, and psql's variable references `:name`, `:'name'`,
    /// `:"name"`, `:{?name}`.
    fn colon(&mut self, s: &[u8], i: usize) -> Result<usize, Refusal> {
        self.token();
        let n = s.len();
        let name_end = |from: usize| {
            from + s[from.min(n)..]
                .iter()
                .position(|&b| !is_variable_char(b))
                .unwrap_or(n.saturating_sub(from))
        };
        match s.get(i + 1).copied() {
            Some(b':') | Some(b'=') => Ok(i + 2),
            Some(b) if is_variable_char(b) => {
                let e = name_end(i + 1);
                self.variable(&s[i + 1..e], s, i)?;
                Ok(e)
            }
            Some(q @ (b'\'' | b'"')) => {
                let e = name_end(i + 2);
                if e > i + 2 && s.get(e) == Some(&q) {
                    self.variable(&s[i + 2..e], s, i)?;
                    return Ok(e + 1);
                }
                Ok(i + 1)
            }
            Some(b'{') if s.get(i + 2) == Some(&b'?') => {
                let e = name_end(i + 3);
                if e > i + 3 && s.get(e) == Some(&b'}') {
                    self.variable(&s[i + 3..e], s, i)?;
                    return Ok(e + 1);
                }
                Ok(i + 1)
            }
            _ => Ok(i + 1),
        }
    }

    /// psql's own variables (ON_ERROR_STOP, DBNAME, VERSION, …) are upper
    /// case; a name with a lower-case letter is never defined here, so psql
    /// leaves it as it is.
    fn variable(&self, name: &[u8], s: &[u8], i: usize) -> Result<(), Refusal> {
        let psql_var = name.iter().any(u8::is_ascii_uppercase)
            && name
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
        if psql_var {
            return Err(self.refusal(Reason::Variable, s, i));
        }
        Ok(())
    }

    /// `$1`, `$tag$` (dollar quoting), or a lone `$`.
    fn dollar(&mut self, s: &[u8], i: usize) -> Result<usize, Refusal> {
        self.token();
        let n = s.len();
        if s.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let e = i
                + 1
                + s[i + 1..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(n - i - 1);
            return Ok(e);
        }
        let mut p = i + 1;
        if p < n && is_dolq_start(s[p]) {
            p += 1;
            while p < n && is_dolq_cont(s[p]) {
                p += 1;
            }
        }
        if p < n && s[p] == b'$' {
            let tag = &s[i..=p];
            if tag.iter().any(|&b| b >= 0x80) {
                self.ambiguous(Ambiguity::DollarTag, s, i)?;
            }
            for q in i..=p {
                self.check_shadow(s, q)?;
            }
            self.dolq = tag.to_vec();
            self.st = St::Xdolq;
            return Ok(p + 1);
        }
        Ok(i + 1)
    }

    fn dollar_quoted(&mut self, s: &[u8], i: usize) -> Result<usize, Refusal> {
        match memchr::memmem::find(&s[i..], &self.dolq) {
            Some(off) => {
                let end = i + off + self.dolq.len();
                for q in i + off..end {
                    self.check_shadow(s, q)?;
                }
                self.st = St::Initial;
                Ok(end)
            }
            None => Ok(s.len()),
        }
    }

    /// '…', U&'…', B'…', X'…': no backslash escapes.
    fn quoted(&mut self, s: &[u8], i: usize) -> Result<usize, Refusal> {
        let Some(off) = memchr::memchr(b'\'', &s[i..]) else {
            return Ok(s.len());
        };
        let q = i + off;
        self.check_shadow(s, q)?;
        let run = s[..q].iter().rev().take_while(|&&b| b == b'\\').count();
        if run % 2 == 1 {
            // With standard_conforming_strings off (or an E prefix in
            // another psql version's reading) this quote is escaped.
            self.ambiguous(Ambiguity::Quote, s, q)?;
        }
        if matches!(self.st, St::Xq | St::Xus) && s.get(q + 1) == Some(&b'\'') {
            self.check_shadow(s, q + 1)?;
            return Ok(q + 2);
        }
        self.before_stop = self.st;
        self.st = St::Xqs;
        Ok(q + 1)
    }

    /// E'…': backslash escapes.
    fn e_quoted(&mut self, s: &[u8], i: usize) -> Result<usize, Refusal> {
        let Some(off) = memchr::memchr2(b'\'', b'\\', &s[i..]) else {
            return Ok(s.len());
        };
        let p = i + off;
        self.check_shadow(s, p)?;
        if s[p] == b'\\' {
            if s.get(p + 1) == Some(&b'\'') {
                // Escaped here, the end of the string in a reading without
                // backslash escapes.
                self.ambiguous(Ambiguity::Quote, s, p)?;
            }
            // An escape takes the next byte (octal, hex and Unicode escapes
            // continue with digits and letters only); at the end of a line
            // psql takes the backslash alone.
            return Ok((p + 2).min(s.len()));
        }
        if s.get(p + 1) == Some(&b'\'') {
            self.check_shadow(s, p + 1)?;
            return Ok(p + 2);
        }
        self.before_stop = St::Xe;
        self.st = St::Xqs;
        Ok(p + 1)
    }

    /// After a closing quote: psql continues the string when whitespace with
    /// a newline (here only a carriage return can be inside a line) and
    /// another quote follow.
    fn quote_stop(&mut self, s: &[u8], i: usize) -> Result<usize, Refusal> {
        if let Some(j) = quote_continue(s, i) {
            for q in i..j {
                if s[q] < 0x80 {
                    self.check_shadow(s, q)?;
                }
            }
            self.st = self.before_stop;
            return Ok(j);
        }
        self.st = St::Initial;
        Ok(i)
    }

    /// "…" and U&"…".
    fn dquoted(&mut self, s: &[u8], i: usize) -> Result<usize, Refusal> {
        let Some(off) = memchr::memchr(b'"', &s[i..]) else {
            return Ok(s.len());
        };
        let q = i + off;
        self.check_shadow(s, q)?;
        if s.get(q + 1) == Some(&b'"') {
            self.check_shadow(s, q + 1)?;
            return Ok(q + 2);
        }
        self.st = St::Initial;
        Ok(q + 1)
    }

    /// /* … */, nested.
    fn c_comment(&mut self, s: &[u8], i: usize) -> Result<usize, Refusal> {
        let n = s.len();
        let mut i = i;
        loop {
            let Some(off) = memchr::memchr2(b'*', b'/', &s[i..]) else {
                return Ok(n);
            };
            let p = i + off;
            if s[p] == b'/' {
                if s.get(p + 1) == Some(&b'*') {
                    self.check_shadow(s, p)?;
                    self.check_shadow(s, p + 1)?;
                    self.xcdepth += 1;
                    i = p + 2;
                } else {
                    i = p + 1;
                }
                continue;
            }
            let stars = s[p..].iter().take_while(|&&b| b == b'*').count();
            let q = p + stars;
            if q < n && s[q] == b'/' {
                for k in p..=q {
                    self.check_shadow(s, k)?;
                }
                if self.xcdepth == 0 {
                    self.st = St::Initial;
                    return Ok(q + 1);
                }
                self.xcdepth -= 1;
                i = q + 1;
            } else {
                i = q;
            }
        }
    }
}

/// The end of psql's `{quotecontinue}` starting at `i`:
/// horiz_whitespace* newline special_whitespace* quote.
fn quote_continue(s: &[u8], i: usize) -> Option<usize> {
    let n = s.len();
    let comment_end = |p: usize| {
        p + 2
            + s[p + 2..]
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(n - p - 2)
    };
    let is_comment = |p: usize| p + 1 < n && s[p] == b'-' && s[p + 1] == b'-';
    let mut p = i;
    loop {
        if p < n && matches!(s[p], b' ' | b'\t' | 0x0c) {
            p += 1;
        } else if is_comment(p) {
            p = comment_end(p);
        } else {
            break;
        }
    }
    if p < n && matches!(s[p], b'\r' | b'\n') {
        p += 1;
    } else {
        return None;
    }
    loop {
        if p < n && matches!(s[p], b' ' | b'\t' | b'\r' | b'\n' | 0x0c) {
            p += 1;
        } else if is_comment(p) {
            let e = comment_end(p);
            if e < n {
                p = e + 1;
            } else {
                break;
            }
        } else {
            break;
        }
    }
    (p < n && s[p] == b'\'').then_some(p + 1)
}

/// The end of a number starting at `i` (psql 15: integer, decimal, real;
/// `1..` is an integer followed by `..`).
fn number_end(s: &[u8], i: usize) -> usize {
    let n = s.len();
    let digits = |mut p: usize| {
        while p < n && s[p].is_ascii_digit() {
            p += 1;
        }
        p
    };
    let mut p = digits(i);
    if p < n && s[p] == b'.' && s.get(p + 1) != Some(&b'.') {
        p = digits(p + 1);
    }
    if p < n && (s[p] == b'e' || s[p] == b'E') {
        let mut q = p + 1;
        if q < n && (s[q] == b'+' || s[q] == b'-') {
            q += 1;
        }
        if q < n && s[q].is_ascii_digit() {
            p = digits(q);
        }
    }
    p
}

fn is_ident_cont(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_variable_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn is_dolq_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_dolq_cont(b: u8) -> bool {
    is_dolq_start(b) || b.is_ascii_digit()
}

/// Up to 60 bytes of `s`, printable (other bytes as `\xNN`).
fn excerpt(s: &[u8]) -> String {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    let mut out = String::new();
    for &b in s.iter().take(60) {
        if (0x20..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if s.len() > 60 {
        out.push('…');
    }
    out
}

/// One identifier as pg_dump writes it: lower-case bare, or double-quoted
/// (`""` for a quote). Returns it and the rest.
fn copy_ident(s: &[u8]) -> Option<(String, &[u8])> {
    if let Some(rest) = s.strip_prefix(b"\"") {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            match rest.get(i)? {
                b'"' if rest.get(i + 1) == Some(&b'"') => {
                    out.push(b'"');
                    i += 2;
                }
                b'"' => break,
                &b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        let name = String::from_utf8(out).ok()?;
        return (!name.is_empty()).then_some((name, &rest[i + 1..]));
    }
    let first = *s.first()?;
    if !(first.is_ascii_lowercase() || first == b'_') {
        return None;
    }
    let end = s
        .iter()
        .position(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'$'))
        .unwrap_or(s.len());
    Some((String::from_utf8(s[..end].to_vec()).ok()?, &s[end..]))
}

/// pg_dump's (and vaultctl's tenant exports') one-line COPY header, exactly:
/// `COPY name (a, b) FROM stdin;` or `COPY schema.name … FROM stdin;`.
pub fn parse_copy_line(line: &[u8]) -> Option<CopyHeader> {
    let rest = line.strip_prefix(b"COPY ")?;
    let (first, mut rest) = copy_ident(rest)?;
    let table = match rest.strip_prefix(b".") {
        Some(r) => {
            let (name, r) = copy_ident(r)?;
            rest = r;
            TableName {
                schema: first,
                name,
            }
        }
        None => TableName {
            schema: "public".into(),
            name: first,
        },
    };
    let mut columns = Vec::new();
    if let Some(mut r) = rest.strip_prefix(b" (") {
        loop {
            let (c, after) = copy_ident(r)?;
            columns.push(c);
            if let Some(a) = after.strip_prefix(b", ") {
                r = a;
            } else {
                rest = after.strip_prefix(b")")?;
                break;
            }
        }
    }
    // pg_dump writes `COPY name  FROM stdin;` (two spaces) for a table
    // without columns.
    let exact = rest == b" FROM stdin;" || (columns.is_empty() && rest == b"  FROM stdin;");
    exact.then_some(CopyHeader { table, columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `text` line by line; the kinds of lines, or the refusal.
    fn scan(text: &str, restricted: bool) -> Result<Vec<Line>, Refusal> {
        let mut s = Scanner::new(Options { restricted });
        let mut out = Vec::new();
        for line in text.as_bytes().split_inclusive(|&b| b == b'\n') {
            out.push(s.line(line)?);
        }
        s.finish()?;
        Ok(out)
    }

    fn refused(text: &str) -> Refusal {
        scan(text, false).expect_err(text)
    }

    fn ok(text: &str) -> Vec<Line> {
        scan(text, false).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn meta_commands_anywhere_outside_quotes_are_refused() {
        for (text, line) in [
            ("\\! touch /tmp/x\n", 1),
            ("SELECT 1;\n\\! touch /tmp/x\n", 2),
            ("SELECT 1; \\! touch /tmp/x\n", 1),
            ("SELECT 1 \\g |sh\n", 1),
            ("\\o /tmp/out\nSELECT 1;\n", 1),
            ("\\copy (select 1) to program 'touch /tmp/x'\n", 1),
            ("\\set x 1\n", 1),
            ("\\i /etc/passwd\n", 1),
            ("SELECT 'a' \\gexec\n", 1),
            ("SELECT 1 \\;\n", 1),
            ("  \\!id\n", 1),
            ("SELECT $$x$$ \\! id\n", 1),
            ("SELECT \"a\"\\! id\n", 1),
            ("/* c */\\! id\n", 1),
            ("SELECT 1; -- c\n\\! id\n", 2),
            ("SELECT E'\\\\'\\! id;\n", 1),
            ("\\.\n", 1),
            ("\\restrict k\nSELECT 1;\n\\restrict k\n", 3),
            ("SELECT 1;\n\\restrict k\n", 2),
            ("\\restrict a\n\\unrestrict b\n", 2),
            ("\\restrict a\nSELECT 1;\n\\unrestrict a\nSELECT 2;\n", 4),
            ("\\restrict bad-key\n", 1),
        ] {
            let r = refused(text);
            assert!(
                matches!(r.reason, Reason::MetaCommand | Reason::AfterUnrestrict),
                "{text:?}: {r}"
            );
            assert_eq!(r.line, line, "{text:?}: {r}");
        }
        let r = refused("SELECT 1;\nSELECT 2; \\! touch /tmp/x\n");
        assert!(
            r.to_string().starts_with("line 2: a psql meta-command"),
            "{r}"
        );
        assert!(r.to_string().contains("`\\! touch /tmp/x`"), "{r}");
    }

    #[test]
    fn backslashes_inside_quotes_comments_and_copy_data_pass() {
        let text = "SET standard_conforming_strings = on;\n\
            SELECT 'a\\b', 'it''s', E'x\\\\y\\n', \"we\\ird\";\n\
            -- a comment with \\! id\n\
            /* a /* nested */ comment \\! id */ SELECT 1;\n\
            CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT '\\'; $$;\n\
            CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS $body$\nBEGIN\n  RETURN '\\! id';\nEND\n$body$;\n\
            SELECT $a$ $b$ \\x $a$;\n\
            SELECT 'multi\nline \\! id\n';\n\
            COPY public.t (a, \"B c\") FROM stdin;\n\\N\t\\\\\n\\.x\tq\\t\n\\\\.\n\\.\n\
            SELECT 2;\n";
        let lines = ok(text);
        assert!(lines.contains(&Line::CopyStart(CopyHeader {
            table: TableName {
                schema: "public".into(),
                name: "t".into()
            },
            columns: vec!["a".into(), "B c".into()],
        })));
        assert_eq!(lines.iter().filter(|l| **l == Line::CopyData).count(), 3);
        assert_eq!(lines.iter().filter(|l| **l == Line::CopyEnd).count(), 1);
    }

    #[test]
    fn statement_ends_are_reported() {
        let lines = ok("SELECT 1; SELECT ';' ; SELECT (1;\n2);\nSELECT 1\n;\n");
        let sql = |ends: Vec<usize>, whole| Line::Sql { ends, whole };
        assert_eq!(lines[0], sql(vec![9, 22], false));
        assert_eq!(lines[1], sql(vec![3], false));
        assert_eq!(lines[3], sql(vec![1], false));
        assert_eq!(ok("SET x = 1;\n")[0], sql(vec![10], true));
    }

    #[test]
    fn begin_atomic_is_one_statement() {
        let text = "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT CASE WHEN true THEN 1 END;\nEND;\n";
        // psql before 14 would end the statement at the first `;`.
        assert_eq!(
            refused(text).reason,
            Reason::Ambiguous(Ambiguity::AtomicSemicolon)
        );
        let lines = scan(text, true).unwrap();
        assert_eq!(
            lines[2],
            Line::Sql {
                ends: vec![],
                whole: false
            }
        );
        assert_eq!(
            lines[3],
            Line::Sql {
                ends: vec![4],
                whole: false
            }
        );
        // The data after it is not mistaken for COPY data, nor the reverse.
        let r = scan(
            "CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1;\nCOPY public.t (a) FROM stdin;\n\\! id\n",
            true,
        )
        .unwrap_err();
        assert_eq!(r.reason, Reason::MetaCommand);
        assert_eq!(r.line, 3);
    }

    #[test]
    fn copy_needs_pg_dumps_exact_line() {
        for text in [
            "copy t from stdin;\n",
            "COPY public.t (a) FROM stdin WITH (FORMAT csv);\n",
            "COPY public.t (a) FROM stdin; \n",
            "COPY public.t (a) FROM stdin;SELECT 1;\n",
            "/* x */ COPY public.t (a) FROM stdin;\n",
            "SELECT 1; COPY public.t (a) FROM stdin;\n",
            "COPY public.t (a)\nFROM stdin;\n",
            "COPY public.T (a) FROM stdin;\n",
            "COPY public.t TO stdout;\n",
        ] {
            assert_eq!(refused(text).reason, Reason::CopyStatement, "{text:?}");
        }
        // Inside a string, a COPY line is text.
        ok("SELECT '\nCOPY public.t (a) FROM stdin;\n';\n");
        // The end marker is the whole line.
        let r = refused("COPY t FROM stdin;\n\\. \n\\.x\n");
        assert_eq!(
            r.reason,
            Reason::Truncated("inside COPY data (the stream is truncated)")
        );
        ok("COPY \"s\".\"t\"\"x\" FROM stdin;\na\n\\.\r\nSELECT 1;\n");
    }

    #[test]
    fn nul_bytes_variables_and_transaction_control_are_refused() {
        assert_eq!(refused("SELECT 1;\0\n").reason, Reason::NulByte);
        assert_eq!(
            refused("COPY t FROM stdin;\na\0\n\\.\n").reason,
            Reason::NulByte
        );
        for text in [
            "SELECT :DBNAME;\n",
            "SELECT :'VERSION';\n",
            "SELECT :\"USER\";\n",
            "SELECT :{?ON_ERROR_STOP};\n",
        ] {
            assert_eq!(refused(text).reason, Reason::Variable, "{text:?}");
        }
        ok("SELECT a[1:n], a[1:\"n\"], 1::int, 'x:Y', ':U';\n");
        for text in [
            "COMMIT;SELECT 1;\n",
            "commit;\n",
            "END;\n",
            "ROLLBACK;\n",
            "/* x */ begin;\n",
            "START TRANSACTION;\n",
        ] {
            assert_eq!(refused(text).reason, Reason::TransactionControl, "{text:?}");
        }
        let lines = ok("BEGIN;\nSELECT lo_create(1);\nCOMMIT;\n");
        assert_eq!(lines[0], Line::Dropped(Dropped::Begin));
        assert_eq!(lines[2], Line::Dropped(Dropped::Commit));
        assert_eq!(
            refused("SET client_encoding = 'SJIS';\n").reason,
            Reason::UnsafeEncoding("SJIS".into())
        );
        ok("SET client_encoding = 'UTF8';\n");
    }

    #[test]
    fn pg_dumps_restrict_lines_are_dropped() {
        let lines = ok("--\n-- dump\n--\n\n\\restrict abc123\n\nSET x = 1;\n--\n\\unrestrict abc123\n\n-- done\n");
        assert_eq!(lines[4], Line::Dropped(Dropped::Restrict));
        assert_eq!(lines[8], Line::Dropped(Dropped::Unrestrict));
    }

    #[test]
    fn readings_that_depend_on_psql_settings_are_ambiguous() {
        for (text, a) in [
            // standard_conforming_strings off: the quote is escaped.
            ("SELECT 'a\\' \\! id';\n", Ambiguity::Quote),
            ("SELECT '\\' ' \\! id ';\n", Ambiguity::Quote),
            ("SELECT E'\\' ' \\! id';\n", Ambiguity::Quote),
            ("SELECT B'1\\';\n", Ambiguity::Quote),
            // SJIS: 0x94 eats the closing quote.
            ("SELECT 'a\u{2014}' \\! id';\n", Ambiguity::Encoding),
            ("SELECT E'\u{2014}\\' ;\n", Ambiguity::Encoding),
            ("SELECT $t\u{e9}$ x $t\u{e9}$;\n", Ambiguity::DollarTag),
            ("SELECT caf\u{e9};\n", Ambiguity::NonAscii),
            ("SELECT 1e'x';\n", Ambiguity::NumberJunk),
            ("SELECT $1end;\n", Ambiguity::NumberJunk),
        ] {
            let r = refused(text);
            assert_eq!(r.reason, Reason::Ambiguous(a), "{text:?}: {r}");
        }
        // With psql enforcing \restrict they follow the usual reading.
        scan("SELECT 'a\\';\nSELECT 'caf\u{e9}', '\u{2014}';\n", true).unwrap();
        // Plain UTF-8 and backslashes away from quotes are fine.
        ok("SELECT 'caf\u{e9} \\d', 'Gr\u{fc}\u{df}e';\nCOMMENT ON TABLE \"t\" IS 'x \\ y';\n");
    }

    #[test]
    fn quote_continuation_follows_psql() {
        // A carriage return inside the line continues the string.
        let r = refused("SELECT 'a'\r'\\' \\! id';\n");
        assert_eq!(r.reason, Reason::Ambiguous(Ambiguity::Quote));
        // Across lines psql does not continue it: the next quote opens a new string.
        ok("SELECT 'a'\n'b';\n");
        // E'' continues as E'': the backslash escapes the quote in both.
        let r = refused("SELECT E'a'\r'\\' \\! id\n");
        assert_eq!(r.reason, Reason::Ambiguous(Ambiguity::Quote));
    }

    #[test]
    fn truncated_streams_are_refused() {
        for text in [
            "SELECT 1\n",
            "SELECT 'a\n",
            "/* x\n",
            "COPY t FROM stdin;\na\n",
            "SELECT (1;\n",
        ] {
            assert!(
                matches!(refused(text).reason, Reason::Truncated(_)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn long_lines_are_read_whole_and_bounded() {
        let s = Scanner::new(Options::default());
        let data = format!("{}\nb\n", "a".repeat(100_000));
        let mut r = std::io::BufReader::with_capacity(1024, data.as_bytes());
        let mut buf = Vec::new();
        assert!(s.read_line(&mut r, &mut buf).unwrap());
        assert_eq!(buf.len(), 100_001);
        assert!(s.read_line(&mut r, &mut buf).unwrap());
        assert_eq!(buf, b"b\n");
        assert!(!s.read_line(&mut r, &mut buf).unwrap());
    }
}
