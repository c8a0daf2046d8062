//! The `command` source: the standard output of any command, whose exit
//! status decides whether the backup succeeded.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::Result;

use crate::error::{ExitStatus, Failure};
use crate::repo::backup::{ArtifactStream, Source};

/// How much of the command's stderr is kept for the error message.
pub const STDERR_TAIL: usize = 4096;

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

/// The end of what a child process writes to stderr, collected on a thread:
/// when a dump fails, its reason is in its last lines.
pub struct StderrTail {
    tail: Arc<Mutex<Vec<u8>>>,
    thread: std::thread::JoinHandle<()>,
}

impl StderrTail {
    /// Starts reading `r`, keeping its last `limit` bytes.
    pub fn spawn(mut r: impl Read + Send + 'static, limit: usize) -> StderrTail {
        let tail = Arc::new(Mutex::new(Vec::new()));
        let kept = tail.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = kept.lock().unwrap();
                t.extend_from_slice(&buf[..n]);
                if t.len() > limit {
                    let cut = t.len() - limit;
                    t.drain(..cut);
                }
            }
        });
        StderrTail { tail, thread }
    }

    /// Waits for the stream to end; returns what was kept, trimmed.
    pub fn finish(self) -> String {
        let _ = self.thread.join();
        let t = self.tail.lock().unwrap();
        String::from_utf8_lossy(&t).trim().to_string()
    }
}

/// Describes how a child ended, for error messages.
/// Widens a pipe to or from a child to 1 MiB (Linux; the unprivileged
/// maximum by default), so the two sides exchange large reads and writes
/// instead of 64 KiB ones: fewer context switches per gigabyte. Best
/// effort: a kernel that refuses keeps the default size.
pub fn widen_pipe(pipe: &impl std::os::fd::AsFd) {
    #[cfg(target_os = "linux")]
    let _ = rustix::pipe::fcntl_setpipe_size(pipe, 1 << 20);
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
}

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
                Failure::new(ExitStatus::Failure, format!("cannot start the command `{}`: {e}.", self.argv[0]))
                    .with_remedy("Check that the program exists and is executable (the command is an argv list, not a shell line; use [\"sh\", \"-c\", \"...\"] for pipes).")
            })?;
        let stdout = child.stdout.take().expect("piped");
        widen_pipe(&stdout);
        let stderr = child.stderr.take().expect("piped");
        let tail = StderrTail::spawn(stderr, STDERR_TAIL);
        let argv0 = self.argv.join(" ");
        let finish = Box::new(move || -> Result<()> {
            let status = child.wait()?;
            let text = tail.finish();
            if status.success() {
                return Ok(());
            }
            Err(Failure::new(
                ExitStatus::Failure,
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
