//! Driving `vaultctl restore` (the wizard) through a real pseudo-terminal.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use rexpect::session::{spawn_command, PtySession};

pub const DOWN: &str = "\x1b[B";
pub const UP: &str = "\x1b[A";
pub const ESC: &str = "\x1b";
pub const ENTER: &str = "\r";

/// `vaultctl --config CONFIG restore` on a pty, HOME in `home`, plain theme.
pub fn wizard(config: &Path, home: &Path, env: &[(&str, &str)]) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultctl"));
    cmd.arg("--config")
        .arg(config)
        .arg("--no-progress")
        .arg("restore")
        .env("HOME", home)
        .env("USER", "tester")
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("PGPASSFILE")
        .envs(env.iter().copied());
    spawn_command(cmd, Some(60_000)).expect("spawn vaultctl in a pty")
}

pub fn send(p: &mut PtySession, keys: &str) {
    p.send(keys).unwrap();
    p.flush().unwrap();
    // Let the prompt read the keys before the next ones (Esc is told apart
    // from an escape sequence by timing).
    std::thread::sleep(std::time::Duration::from_millis(300));
}

pub fn exit_code(p: &mut PtySession) -> i32 {
    match p.process_mut().wait().unwrap() {
        rexpect::process::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("vaultctl did not exit normally: {other:?}"),
    }
}
