//! The committed man page and completions must match the clap definition.
//! Regenerate them with `VAULTCTL_BLESS=1 cargo test --test docs`.

use std::path::Path;
use std::process::Command;

fn generated(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_vaultctl"))
        .args(args)
        .output()
        .expect("run vaultctl");
    assert!(
        out.status.success(),
        "vaultctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn check(path: &str, args: &[&str]) {
    let fresh = generated(args);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("VAULTCTL_BLESS").is_some() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read(&file).unwrap_or_default();
    assert!(
        committed == fresh,
        "{path} is stale: regenerate it with `VAULTCTL_BLESS=1 cargo test --test docs` and commit the result"
    );
}

#[test]
fn man_page_is_fresh() {
    check("man/vaultctl.1", &["man"]);
}

#[test]
fn completions_are_fresh() {
    check("completions/vaultctl.bash", &["completions", "bash"]);
    check("completions/_vaultctl", &["completions", "zsh"]);
    check("completions/vaultctl.fish", &["completions", "fish"]);
}
