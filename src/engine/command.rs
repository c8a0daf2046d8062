//! The `command` source: the standard output of any command, whose exit
//! status decides whether the backup succeeded.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::Result;

use crate::error::{ExitKind, Failure};
use crate::repo::backup::{ArtifactStream, Source};

/// How much of the command's stderr is kept for the error message.
const STDERR_TAIL: usize = 4096;

pub struct CommandSource {
    argv: Vec<String>,
    tar: bool,
    started: bool,
}

impl CommandSource {
    pub fn new(argv: Vec<String>, tar: bool) -> Self {
        CommandSource {
            argv,
            tar,
            started: false,
        }
    }
}

/// Keeps the last `STDERR_TAIL` bytes of a stream.
fn collect_tail(mut r: impl Read, tail: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut t = tail.lock().unwrap();
        t.extend_from_slice(&buf[..n]);
        if t.len() > STDERR_TAIL {
            let cut = t.len() - STDERR_TAIL;
            t.drain(..cut);
        }
    }
}

/// Describes how a child ended, for error messages.
pub fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "ended abnormally".into(),
    }
}

impl Source for CommandSource {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        if self.started {
            return Ok(None);
        }
        self.started = true;
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Failure::new(ExitKind::Failure, format!("cannot start the command `{}`: {e}.", self.argv[0]))
                    .with_remedy("Check that the program exists and is executable (the command is an argv list, not a shell line; use [\"sh\", \"-c\", \"...\"] for pipes).")
            })?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let tail = Arc::new(Mutex::new(Vec::new()));
        let tail_thread = {
            let tail = tail.clone();
            std::thread::spawn(move || collect_tail(stderr, tail))
        };
        let argv0 = self.argv.join(" ");
        let finish = Box::new(move || -> Result<()> {
            let status = child.wait()?;
            let _ = tail_thread.join();
            if status.success() {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&tail.lock().unwrap())
                .trim()
                .to_string();
            Err(Failure::new(
                ExitKind::Failure,
                format!(
                    "the command `{argv0}` {}{}",
                    describe_status(&status),
                    if text.is_empty() {
                        ".".to_string()
                    } else {
                        format!("; its stderr ended with: {text}")
                    }
                ),
            )
            .with_remedy(
                "No backup was recorded as complete; fix the command and run the backup again.",
            )
            .into())
        });
        Ok(Some(ArtifactStream {
            name: if self.tar {
                "archive.tar".into()
            } else {
                "stdout".into()
            },
            format: if self.tar {
                "tar".into()
            } else {
                "stream".into()
            },
            reader: Box::new(stdout),
            finish,
        }))
    }

    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({ "command": self.argv })
    }
}
