//! How vaultctl ships: the static binary in an empty root filesystem, and
//! the Debian package installed, used and purged on this machine. Both take
//! the static binary that scripts/build-static.sh built (scripts/test.sh
//! passes its path in VAULTCTL_STATIC_BIN and the package's path in
//! VAULTCTL_DEB); outside CI they skip with a message when it is unset.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{pseudo_random, Out};

/// The artifact in `var`: required in CI, else skipped with a message.
fn artifact(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "{var}={} is not a file", p.display());
            Some(p)
        }
        None if std::env::var_os("CI").is_some() => panic!(
            "{var} is not set: scripts/test.sh builds {what} and sets it; \
             run the suite through scripts/test.sh"
        ),
        None => {
            eprintln!("skipped: {var} is not set (scripts/test.sh builds {what} and sets it)");
            None
        }
    }
}

fn run(cmd: &mut Command) -> Out {
    cmd.output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()))
        .into()
}

/// `tool`'s path from our PATH: a command whose environment is cleared
/// would look only in /bin:/usr/bin, and chroot and runuser live in
/// /usr/sbin.
fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed (scripts/test.sh installs it)"))
}

/// `vaultctl ARGS` inside the chroot `root`, with nothing from our
/// environment (no HOME, no PATH): the binary must need nothing else.
fn in_chroot(root: &Path, args: &[&str]) -> Out {
    let mut c = Command::new(tool("chroot"));
    c.arg(root).arg("/vaultctl").args(args);
    c.env_clear().env("TMPDIR", "/tmp");
    run(&mut c)
}

#[test]
fn static_binary_runs_in_an_empty_root() {
    let Some(bin) = artifact("VAULTCTL_STATIC_BIN", "the static binary") else {
        return;
    };
    let ldd = Command::new("ldd").arg(&bin).output().expect("run ldd");
    let said =
        String::from_utf8_lossy(&ldd.stdout).to_string() + &String::from_utf8_lossy(&ldd.stderr);
    assert!(
        said.contains("not a dynamic executable"),
        "ldd {}: {said}",
        bin.display()
    );

    // The root holds the binary, /tmp, the data and the file:// target:
    // no /etc, no /lib, no /usr, no /dev.
    let dir = tempfile::Builder::new()
        .prefix("vaultctl-chroot-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    std::fs::copy(&bin, root.join("vaultctl")).unwrap();
    for d in ["tmp", "repo", "data/sub", "out"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let payload = pseudo_random(15, 300_000);
    std::fs::write(root.join("data/sub/blob.bin"), &payload).unwrap();
    std::fs::write(root.join("data/notes.txt"), b"static\n").unwrap();

    let version = in_chroot(root, &["--version"]);
    version.ok();
    assert!(
        version.stdout_str().starts_with("vaultctl "),
        "{}",
        version.stdout_str()
    );

    let key = in_chroot(root, &["key", "generate", "--output", "/tmp/id.txt"]);
    key.ok();
    let recipient = key.stdout_str().trim().to_string();
    assert!(
        recipient.starts_with("age1"),
        "key generate printed {recipient:?}"
    );
    std::fs::write(
        root.join("tmp/config.toml"),
        format!(
            "catalog = \"/tmp/catalog.db\"\n\n[keys]\nidentity_file = \"/tmp/id.txt\"\n\
             recipients = [\"{recipient}\"]\ndedup_key_file = \"/tmp/dedup.key\"\n\n\
             [[target]]\nname = \"local\"\nurl = \"file:///repo\"\n"
        ),
    )
    .unwrap();
    let vc = |args: &[&str]| {
        let mut a = vec!["--config", "/tmp/config.toml", "--no-progress"];
        a.extend_from_slice(args);
        in_chroot(root, &a)
    };
    vc(&["init"]).ok();
    let backup = vc(&["--json", "backup", "files", "/data", "--name", "data"]);
    backup.ok();
    let id = backup.json()["id"].as_str().expect("backup id").to_string();
    vc(&["restore", &id, "--to", "/out"]).ok();
    let restored = find(&root.join("out"), "blob.bin").expect("blob.bin restored under /out");
    assert_eq!(std::fs::read(restored).unwrap(), payload);
    let verify = vc(&["verify", "--read-data"]);
    verify.ok();
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()? {
        let p = e.ok()?.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir() {
            if let Some(f) = find(&p, name) {
                return Some(f);
            }
        }
    }
    None
}

/// Purges the package when the test ends, whatever happened: the machine
/// must not keep it.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "vaultctl"]).output();
    }
}

fn dpkg_knows_vaultctl() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "vaultctl"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && !o.stdout.is_empty()
                && !String::from_utf8_lossy(&o.stdout).contains("not-installed")
        })
}

/// The units the package installs under /usr/lib/systemd/system.
const UNITS: [&str; 6] = [
    "vaultctl-backup@.service",
    "vaultctl-backup@.timer",
    "vaultctl-walcheck@.service",
    "vaultctl-walcheck@.timer",
    "vaultctl-drill@.service",
    "vaultctl-drill@.timer",
];

#[test]
fn debian_package_installs_runs_as_its_user_and_purges() {
    let Some(deb) = artifact("VAULTCTL_DEB", "the Debian package") else {
        return;
    };
    assert!(
        !dpkg_knows_vaultctl(),
        "a vaultctl package is already installed here: the test would purge it; remove it first (dpkg --purge vaultctl)"
    );
    let _purge = Purge;
    run(Command::new("dpkg").arg("-i").arg(&deb)).ok();

    // The binary, the man page (man-db finds it), the completions, the docs.
    let v = run(Command::new("/usr/bin/vaultctl").arg("--version"));
    v.ok();
    assert!(v.stdout_str().starts_with("vaultctl "));
    let man = run(Command::new("man").args(["-w", "vaultctl"]));
    man.ok();
    assert!(
        man.stdout_str()
            .trim()
            .starts_with("/usr/share/man/man1/vaultctl.1"),
        "man -w: {}",
        man.stdout_str()
    );
    for p in [
        "/usr/share/bash-completion/completions/vaultctl",
        "/usr/share/zsh/vendor-completions/_vaultctl",
        "/usr/share/fish/vendor_completions.d/vaultctl.fish",
        "/usr/share/doc/vaultctl/config.example.toml",
        "/usr/share/doc/vaultctl/copyright",
    ] {
        assert!(Path::new(p).is_file(), "{p} is not installed");
    }
    for u in UNITS {
        let text = std::fs::read_to_string(format!("/usr/lib/systemd/system/{u}")).unwrap();
        assert!(text.contains("vaultctl"), "{u}");
    }

    // The system user and its state directory, 0700.
    use std::os::unix::fs::MetadataExt;
    let id = run(Command::new("id").args(["-u", "vaultctl"]));
    id.ok();
    let uid: u32 = id.stdout_str().trim().parse().unwrap();
    let state = std::fs::metadata("/var/lib/vaultctl").expect("/var/lib/vaultctl");
    assert_eq!(state.mode() & 0o7777, 0o700);
    assert_eq!(state.uid(), uid);

    // systemd-analyze checks an instance of each template (it needs no
    // running systemd: the test machine's PID 1 is not systemd).
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let instances: Vec<String> = UNITS
            .iter()
            .map(|u| format!("/usr/lib/systemd/system/{}", u.replace("@.", "@db.")))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["verify".to_string()];
        for (u, inst) in UNITS.iter().zip(&instances) {
            // An instance is verified as a file of that name.
            let p = dir.path().join(Path::new(inst).file_name().unwrap());
            std::fs::copy(format!("/usr/lib/systemd/system/{u}"), &p).unwrap();
            args.push(p.display().to_string());
        }
        let out = run(Command::new("systemd-analyze")
            .args(&args)
            .env("SYSTEMD_LOG_LEVEL", "warning"));
        out.ok();
        assert!(
            !out.stderr.contains("vaultctl"),
            "systemd-analyze verify complained about the units:\n{}",
            out.stderr
        );
    } else {
        eprintln!("systemd-analyze is not installed: the units were not verified");
    }

    // A backup as the vaultctl user, into a file:// target in its state dir.
    let vc = |args: &[&str]| {
        let mut c = Command::new(tool("runuser"));
        c.args(["-u", "vaultctl", "--", "/usr/bin/vaultctl"])
            .args(args);
        c.env_clear()
            .env("HOME", "/var/lib/vaultctl")
            .env("PATH", "/usr/bin:/bin")
            .current_dir("/");
        run(&mut c)
    };
    let key = vc(&["key", "generate", "--output", "/var/lib/vaultctl/id.txt"]);
    key.ok();
    let recipient = key.stdout_str().trim().to_string();
    let config = "/var/lib/vaultctl/config.toml";
    std::fs::write(
        config,
        format!(
            "catalog = \"/var/lib/vaultctl/catalog.db\"\n\n[keys]\nidentity_file = \"/var/lib/vaultctl/id.txt\"\n\
             recipients = [\"{recipient}\"]\ndedup_key_file = \"/var/lib/vaultctl/dedup.key\"\n\n\
             [[target]]\nname = \"local\"\nurl = \"file:///var/lib/vaultctl/repo\"\n"
        ),
    )
    .unwrap();
    run(Command::new("chown").args(["vaultctl:vaultctl", config])).ok();
    vc(&["--config", config, "--no-progress", "init"]).ok();
    let b = vc(&[
        "--config",
        config,
        "--no-progress",
        "--json",
        "backup",
        "files",
        "/usr/share/doc/vaultctl",
        "--name",
        "docs",
    ]);
    b.ok();
    assert_eq!(b.json()["source"], "docs");
    let catalog = std::fs::metadata("/var/lib/vaultctl/catalog.db").unwrap();
    assert_eq!(
        catalog.uid(),
        uid,
        "the catalog belongs to the vaultctl user"
    );

    // Purge: nothing of the package is left but the system user (Debian
    // keeps system users: files elsewhere may still carry its uid).
    run(Command::new("dpkg").args(["--purge", "vaultctl"])).ok();
    assert!(
        !dpkg_knows_vaultctl(),
        "dpkg still knows vaultctl after --purge"
    );
    for p in [
        "/usr/bin/vaultctl",
        "/usr/share/doc/vaultctl",
        "/usr/share/man/man1/vaultctl.1.gz",
        "/usr/share/bash-completion/completions/vaultctl",
        "/usr/share/zsh/vendor-completions/_vaultctl",
        "/usr/share/fish/vendor_completions.d/vaultctl.fish",
        "/var/lib/vaultctl",
        "/etc/vaultctl",
    ] {
        assert!(!Path::new(p).exists(), "{p} is left after dpkg --purge");
    }
    for u in UNITS {
        let p = format!("/usr/lib/systemd/system/{u}");
        assert!(!Path::new(&p).exists(), "{p} is left after dpkg --purge");
    }
}
