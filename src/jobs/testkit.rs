//! A repository on local disk for the jobs' unit tests: real targets
//! (directories), a real catalog and real keys in a temporary directory,
//! and no binary.

use std::path::{Path, PathBuf};

use crate::config::{validate, Config, Origin};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl Fixture {
    /// File targets named `targets` (the first is the primary), then the
    /// TOML of `extra` (sources, `[target.retention]` of the last target…;
    /// `{root}` in it is the fixture's directory); keys generated and the
    /// repository initialised.
    pub fn new(targets: &[&str], extra: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        crate::repo::keys::generate_identity(&root.join("identity.txt")).unwrap();
        let mut toml = format!(
            "catalog = \"{0}/catalog.db\"\n[keys]\nidentity_file = \"{0}/identity.txt\"\ndedup_key_file = \"{0}/dedup.key\"\n",
            root.display()
        );
        for t in targets {
            toml += &format!(
                "[[target]]\nname = \"{t}\"\nurl = \"file://{}/{t}\"\n",
                root.display()
            );
        }
        toml += &extra.replace("{root}", &root.display().to_string());
        let raw = toml::from_str(&toml).expect("fixture config parses");
        let config = validate(raw, Origin::File(root.join("config.toml"))).unwrap();
        crate::repo::init(&config).unwrap();
        Fixture { dir, config }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn job(&self) -> super::Job<'_> {
        super::Job {
            config: &self.config,
            progress: std::sync::Arc::new(crate::progress::Silent),
            confirm: &super::Confirmed,
        }
    }

    /// Writes `files` (relative path, content) under `rel`.
    pub fn tree(&self, rel: &str, files: &[(&str, &str)]) {
        let base = self.path(rel);
        for (name, text) in files {
            let p = base.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    /// Backs up the configured source `name`; its backup id.
    pub fn backup(&self, name: &str) -> String {
        let names = [name.to_string()];
        let what = super::backup::Selection::Configured {
            names: &names,
            all: false,
            tenants: None,
        };
        let planned = super::backup::plan(&self.config, what).unwrap();
        let mut id = None;
        let mut on = |e: super::backup::Event| {
            match e {
                super::backup::Event::Done(o) => id = Some(o.id.clone()),
                super::backup::Event::Failed(_, e) => panic!("backup failed: {e:#}"),
                super::backup::Event::Unavailable(t, why) => panic!("{t} unavailable: {why}"),
            }
            Ok(())
        };
        super::backup::run(&self.job(), planned, &[], None, &mut on).unwrap();
        id.expect("a backup completed")
    }

    pub fn catalog(&self) -> crate::catalog::Catalog {
        crate::catalog::Catalog::open(&self.config.catalog).unwrap()
    }
}

/// Every file under `dir` (recursively), sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every file under `dir`, relative, with its content.
pub fn files_under(dir: &Path) -> Vec<(String, String)> {
    files_in(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            (rel, text)
        })
        .collect()
}
