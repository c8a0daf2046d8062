//! `vaultctl report --html` in a real headless browser (Debian's chromium):
//! a repository with a PostgreSQL and a files source, backups over several
//! days, a drill and a verify run; the page renders with its sections, the
//! charts have one point per backup, drill and verify run of the window, and
//! nothing is fetched (no URL in the page; chromium runs with every host
//! name unresolvable and a NetLog of its requests).

use crate::pg;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pg::{fixture, SourceDef, Vault, BACKUP_PASSWORD};

/// The browser, or a failure that says how to install it.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(o) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if o.status.success() && !p.is_empty() {
                return PathBuf::from(p);
            }
        }
    }
    panic!(
        "the HTML report test needs a headless browser and chromium is not installed{}. Install it with: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium (scripts/test.sh does this)",
        if std::env::var_os("CI").is_some() {
            " (in CI, scripts/test.sh should have installed it)"
        } else {
            ""
        }
    );
}

/// Runs headless chromium on `page` with no host name resolvable and a
/// NetLog in `netlog`; returns stdout.
fn browse(page: &Path, netlog: &Path, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .env("HOME", profile.path())
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The markup of `<svg id="ID" …>…</svg>` in `html`.
fn svg<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("no chart {id} in the page"));
    let end = html[start..].find("</svg>").unwrap() + start;
    &html[start..end]
}

/// The size chart of the source named `name` (its `data-source` block).
fn size_chart<'a>(html: &'a str, name: &str) -> &'a str {
    let start = html
        .find(&format!("data-source=\"{name}\""))
        .unwrap_or_else(|| panic!("no chart of source {name}"));
    let end = html[start..].find("</svg>").unwrap() + start;
    &html[start..end]
}

/// A request Chromium makes for itself whatever the page: its own Google
/// service hosts.
fn chromium_service(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split(['/', '?', ':']).next())
        .unwrap_or("");
    ["google.com", "gvt1.com", "googleapis.com", "gstatic.com"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// The catalog's time format (UTC, milliseconds), also accepted by `VAULTCTL_NOW`.
fn rfc3339(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[test]
fn html_report_renders_in_chromium_with_every_point_and_fetches_nothing() {
    let t = std::time::Instant::now();
    let c = fixture();
    let v = Vault::new(&[SourceDef {
        name: "db",
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: None,
    }]);
    let docs = v.dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("a.txt"), "first\n").unwrap();
    let scratch = c.url("postgres", "drill_report");
    let mut toml = std::fs::read_to_string(&v.config).unwrap();
    toml.push_str(&format!(
        "[source.drill]\nscratch_db = \"{scratch}\"\nrto_goal = \"15m\"\n[[source]]\nname = \"docs\"\nkind = \"files\"\npaths = [\"{}\"]\nschedule = \"daily\"\n",
        docs.display()
    ));
    std::fs::write(&v.config, toml).unwrap();

    // db: 2 backups (one noted with markup), docs: 3, one of them older than the window.
    let evil = "<script>alert('note')</script>";
    let db1 = v.backup(&["db", "--note", evil]);
    let db2 = v.backup(&["db"]);
    let mut docs_ids = Vec::new();
    for i in 0..3 {
        std::fs::write(docs.join(format!("{i}.txt")), "x".repeat(1000 * (i + 1))).unwrap();
        docs_ids.push(v.backup(&["docs"]));
    }
    // Backup times are the wall clock's (records say when things happened):
    // date them back in the catalog, spread over days.
    let now = time::OffsetDateTime::now_utc();
    let days_ago = [
        (&db1, 6),
        (&db2, 2),
        (&docs_ids[0], 120),
        (&docs_ids[1], 5),
        (&docs_ids[2], 1),
    ];
    let cat = rusqlite::Connection::open(v.dir.path().join("catalog.db")).unwrap();
    for (id, d) in days_ago {
        let at = now - time::Duration::days(d);
        let n = cat
            .execute(
                "UPDATE backups SET started_at = ?2, finished_at = ?3 WHERE id = ?1",
                rusqlite::params![id, rfc3339(at), rfc3339(at + time::Duration::seconds(3))],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    drop(cat);

    let drill = v.json(&["dr", "drill", "--source", "db"]);
    assert_eq!(drill["ok"], true, "{drill}");
    let verify_at = rfc3339(now - time::Duration::days(3));
    let o = v
        .command(&["verify"])
        .env("VAULTCTL_NOW", &verify_at)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The report an hour from now (injected clock), as JSON and as HTML.
    let at = rfc3339(now + time::Duration::hours(1));
    let page = v.dir.path().join("out/report.html");
    let o = v
        .command(&["--json", "report", "--html", page.to_str().unwrap()])
        .env("VAULTCTL_NOW", &at)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["days"], 90);
    assert_eq!(j["generated_at"].as_str().unwrap()[..16], at[..16]);
    let series = |name: &str| {
        j["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no source {name}: {j}"))
            .clone()
    };
    let db = series("db");
    assert_eq!(db["backups"].as_array().unwrap().len(), 2, "{db}");
    assert_eq!(db["backups"][0]["id"], db1.as_str(), "oldest first");
    assert_eq!(db["backups"][0]["note"], evil);
    let d = series("docs");
    let ids: Vec<&str> = d["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [docs_ids[1].as_str(), docs_ids[2].as_str()],
        "120 days ago is outside"
    );
    assert_eq!(j["drills"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["drills"][0]["rto_ms"], drill["rto_ms"]);
    assert_eq!(
        j["rto_goals"],
        serde_json::json!([{"source": "db", "goal_ms": 900000}])
    );
    assert_eq!(j["verify_runs"].as_array().unwrap().len(), 1);
    assert_eq!(j["verify_runs"][0]["ok"], true);
    let st = v
        .command(&["--json", "status"])
        .env("VAULTCTL_NOW", &at)
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(
        j["health"]["health_score"], st["health_score"],
        "the same evaluation as status"
    );
    assert_eq!(j["health"]["state"], st["state"]);

    // The file: 0644, no script, no URL of any kind.
    let mode = std::fs::metadata(&page).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    let html = std::fs::read_to_string(&page).unwrap();
    for bad in [
        "<script", "http:", "https:", "//", "src=", "url(", "@import",
    ] {
        assert!(!html.contains(bad), "the page contains {bad:?}");
    }
    assert_eq!(html.matches("href=").count(), 1, "only the data: favicon");
    assert!(html.contains("&lt;script&gt;alert(&#39;note&#39;)&lt;/script&gt;"));

    // A real browser: the DOM it built, then a screenshot.
    let netlog = v.dir.path().join("netlog.json");
    let dom = browse(&page, &netlog, &["--dump-dom"]);
    for id in ["health", "alerts", "sources", "storage", "checks", "charts"] {
        assert!(
            dom.contains(&format!("<section id=\"{id}\"")),
            "no section {id} in the DOM"
        );
    }
    assert!(
        !dom.contains("<script"),
        "markup from the catalog became an element"
    );
    assert_eq!(
        size_chart(&dom, "db").matches("<circle").count(),
        4,
        "2 sizes + 2 new stored"
    );
    assert_eq!(size_chart(&dom, "docs").matches("<circle").count(), 4);
    assert_eq!(svg(&dom, "chart-durations").matches("<circle").count(), 4);
    let rto = svg(&dom, "chart-rto");
    assert_eq!(rto.matches("<circle").count(), 1);
    assert!(rto.contains("goal db 15m00s"), "{rto}");
    assert_eq!(svg(&dom, "chart-verify").matches("<circle").count(), 1);
    let log = std::fs::read_to_string(&netlog).unwrap();
    let requests: Vec<&str> = log
        .split("\"url\":\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap_or(s.len())])
        .filter(|u| !u.starts_with("file:") && !u.starts_with("data:"))
        // Chromium's own background requests (network time, spelling
        // dictionary, account list) are not the page's; with every host
        // unresolvable they fail anyway.
        .filter(|u| !chromium_service(u))
        .collect();
    assert!(requests.is_empty(), "the page fetched {requests:?}");

    let shot = v.dir.path().join("report.png");
    browse(
        &page,
        &netlog,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2400",
            "--hide-scrollbars",
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    // Kept for people to look at.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png");
    std::fs::copy(&shot, &keep).unwrap();
    std::fs::copy(&page, keep.with_extension("html")).unwrap();
    eprintln!(
        "report test: {:.1}s; screenshot {}",
        t.elapsed().as_secs_f64(),
        keep.display()
    );
}
