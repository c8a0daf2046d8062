//! Redaction of URLs in messages: webhook, healthcheck and storage endpoint
//! URLs often carry a token in their path or query, or credentials in their
//! userinfo, and messages end up in logs, alerts (the catalog), notification
//! bodies and terminals.
//!
//! [`url`] reduces one URL to `scheme://host:port` (a `/…` marks that a path
//! or query was dropped), so the operator still sees which endpoint failed.
//! [`text`] does that to every http(s) URL inside free text (error messages
//! of HTTP and storage clients), and masks the password of any other URL
//! (`postgresql://user:***@host/db`). Every error paragraph
//! ([`crate::error::paragraph`]) and every log line goes through [`text`].

/// Shown instead of a string that does not even parse as a URL: it is never
/// echoed, because it may be a secret pasted in the wrong place.
pub const UNPARSABLE: &str = "(a URL that is not shown because it does not parse)";

/// `scheme://host:port` of `u`, with `/…` when a path, query or fragment
/// was dropped. Userinfo is always dropped. A string that is not a URL
/// becomes [`UNPARSABLE`].
pub fn url(u: &str) -> String {
    let u = u.trim();
    match split(u) {
        Some(parts) if parts.valid_host() => {
            let mut out = format!("{}://{}", parts.scheme, parts.host);
            if !parts.rest.is_empty() && parts.rest != "/" {
                out.push_str("/…");
            }
            out
        }
        _ => UNPARSABLE.to_string(),
    }
}

/// `text` with every http(s) URL reduced by [`url`] and the password of
/// any other URL replaced by `***`.
pub fn text(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        // The scheme: the letters, digits and `+-.` right before `://`.
        let head = &rest[..pos];
        let scheme_len = head
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .map(char::len_utf8)
            .sum::<usize>();
        let start = pos - scheme_len;
        // The URL runs to whitespace, a quote or an angle bracket.
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        let token = &tail[..end];
        // Sentence punctuation after the URL stays.
        let trimmed = token.trim_end_matches(['.', ',', ';', ':', ')', ']', '}']);
        let trailing = &token[trimmed.len()..];
        out.push_str(&rest[..start]);
        out.push_str(&redact_token(trimmed));
        out.push_str(trailing);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn redact_token(token: &str) -> String {
    let Some(parts) = split(token) else {
        return token.to_string();
    };
    let scheme = parts.scheme.to_ascii_lowercase();
    if parts.scheme.is_empty() {
        // `://` without a scheme: not a URL.
        return token.to_string();
    }
    if scheme == "http" || scheme == "https" {
        return url(token);
    }
    match parts.userinfo {
        Some(ui) if ui.contains(':') => {
            let user = ui.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}{}", parts.scheme, parts.host, parts.rest)
        }
        _ => token.to_string(),
    }
}

/// `u` with the password of its userinfo removed (the last `@` ends the
/// userinfo, so a password holding `@` goes entirely); other strings as
/// they are.
pub fn without_password(u: &str) -> String {
    match split(u) {
        Some(Parts {
            scheme,
            userinfo: Some(ui),
            host,
            rest,
        }) => {
            let user = ui.split(':').next().unwrap_or("");
            let at = if user.is_empty() { "" } else { "@" };
            format!("{scheme}://{user}{at}{host}{rest}")
        }
        _ => u.to_string(),
    }
}

/// Why a libpq connection string did not parse, without echoing any part
/// of it: only the names of options with a bad value (fixed names from the
/// parser, never text from the string) are kept.
pub fn conninfo_error(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    const BAD_VALUE: &str = "invalid value for option `";
    if let Some(i) = s.find(BAD_VALUE) {
        let name: String = s[i + BAD_VALUE.len()..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        if !name.is_empty() {
            return format!("invalid value for option `{name}`");
        }
    }
    if s.contains("unknown option") {
        return "it names an unknown option".into();
    }
    "it does not parse".into()
}

/// A writer for log lines: collects one event's text and writes it to
/// stderr redacted when dropped (tracing writes each event through a fresh
/// writer, so redaction sees whole lines).
#[derive(Default)]
pub struct LogWriter {
    buf: Vec<u8>,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let line = text(&String::from_utf8_lossy(&self.buf));
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }
}

struct Parts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    /// Host and port.
    host: &'a str,
    /// Path, query and fragment.
    rest: &'a str,
}

impl Parts<'_> {
    fn valid_host(&self) -> bool {
        !self.scheme.is_empty()
            && self.scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && self
                .scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && self.host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']' | '%')
            })
    }
}

fn split(u: &str) -> Option<Parts<'_>> {
    let (scheme, after) = u.split_once("://")?;
    let auth_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(auth_end);
    // The last `@` ends the userinfo (a password may itself hold an `@`).
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    Some(Parts {
        scheme,
        userinfo,
        host,
        rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keeps_scheme_host_and_port_only() {
        assert_eq!(
            url("https://hooks.example.com/services/T0/B1/SECRET?token=abc"),
            "https://hooks.example.com/…"
        );
        assert_eq!(
            url("http://user:pw@127.0.0.1:9/ping/uuid"),
            "http://127.0.0.1:9/…"
        );
        assert_eq!(url("https://h.example:8443"), "https://h.example:8443");
        assert_eq!(url("https://h.example/"), "https://h.example");
        assert_eq!(url("https://h.example?k=SECRET"), "https://h.example/…");
        assert_eq!(url("https://h.example#SECRET"), "https://h.example/…");
        assert_eq!(url("http://[::1]:8080/x"), "http://[::1]:8080/…");
        assert_eq!(
            url("https://u:p@ss@h.example/x"),
            "https://h.example/…",
            "a password holding @"
        );
    }

    #[test]
    fn passwords_go_from_userinfo() {
        assert_eq!(
            without_password("postgresql://u:p@ss@h:5433/db"),
            "postgresql://u@h:5433/db"
        );
        assert_eq!(
            without_password("postgresql://:pw@h/db"),
            "postgresql://h/db"
        );
        assert_eq!(
            without_password("postgresql://u@h/db"),
            "postgresql://u@h/db"
        );
        assert_eq!(without_password("host=h dbname=d"), "host=h dbname=d");
        assert_eq!(
            conninfo_error(&"invalid configuration: invalid value for option `port`"),
            "invalid value for option `port`"
        );
        assert_eq!(
            conninfo_error(&"invalid configuration: unknown option `SECRET`"),
            "it names an unknown option"
        );
        assert_eq!(
            conninfo_error(&"unexpected character at byte 3: expected `=` but got `S`"),
            "it does not parse"
        );
    }

    #[test]
    fn unparsable_urls_are_never_echoed() {
        for bad in [
            "hooks.example.com/SECRET",
            "SECRET",
            "",
            "://SECRET",
            "https://SECRET VALUE/x",
            "ht tp://SECRET/x",
            "host=db password=SECRET",
        ] {
            let r = url(bad);
            assert_eq!(r, UNPARSABLE, "{bad}");
            assert!(!r.contains("SECRET"));
        }
    }

    #[test]
    fn text_redacts_every_http_url() {
        let msg = "error sending request for url (https://hc.example:8443/ping/SECRET?x=SECRET): \
                   connection refused; then POST http://u:SECRET@10.0.0.1/hook/SECRET. Done";
        let r = text(msg);
        assert!(!r.contains("SECRET"), "{r}");
        assert_eq!(
            r,
            "error sending request for url (https://hc.example:8443/…): \
             connection refused; then POST http://10.0.0.1/…. Done"
        );
        assert_eq!(
            text("Error performing GET https://s3.example/bucket/packs/ab in 3s"),
            "Error performing GET https://s3.example/… in 3s"
        );
        assert_eq!(
            text("\"HTTPS://h.example/SECRET\""),
            "\"HTTPS://h.example/…\""
        );
    }

    #[test]
    fn text_masks_passwords_of_other_urls_and_keeps_the_rest() {
        assert_eq!(
            text("cannot connect to postgresql://app:SECRET@db.example:5432/app?sslmode=require"),
            "cannot connect to postgresql://app:***@db.example:5432/app?sslmode=require"
        );
        for plain in [
            "Add url = \"postgresql://backup@127.0.0.1:5432/app\" (no password in it).",
            "target 'local' (file:///var/backups/vaultctl) does not exist.",
            "s3://bucket/prefix at https://r2.example",
            "no url here",
            "a :// alone",
        ] {
            assert_eq!(text(plain), plain);
        }
        // Multi-byte text around URLs survives.
        assert_eq!(text("é https://h/x é"), "é https://h/… é");
    }
}
