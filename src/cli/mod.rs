//! The `vaultctl` command line: clap definitions, dispatch, exit codes.
//!
//! Each subcommand lives in `commands/`; output helpers (tables, JSON,
//! progress) in `output`. Errors are printed once, as one paragraph, and
//! mapped to the documented exit codes.

pub mod commands;
pub mod output;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, Overrides};
use crate::error::{exit_status, paragraph, ExitStatus};

/// `--help`'s list of exit codes.
fn exit_codes_help() -> String {
    let mut s = String::from("Exit codes:\n");
    for status in ExitStatus::ALL {
        s.push_str(&format!("  {:<3} {}\n", status.code(), status.meaning()));
    }
    s.push_str("Scripts should treat any other code as a failure.");
    s
}

#[derive(Parser, Debug)]
#[command(
    name = "vaultctl",
    version,
    about = "Encrypted, deduplicated backups of PostgreSQL, files and command output to local disk and S3-compatible storage",
    long_about = None,
    after_help = exit_codes_help()
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes; `--help` lists them under their own
/// heading, after the command's own.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars or periodic progress lines
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// More log output (repeatable); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output (repeatable)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// Identity file for reading backups (overrides keys.identity_file)
    #[arg(long, global = true, value_name = "FILE", env = "VAULTCTL_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Catalog database (overrides `catalog` in the config)
    #[arg(long, global = true, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Prometheus textfile to write after state changes (overrides `metrics_textfile`)
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "VAULTCTL_METRICS_TEXTFILE"
    )]
    pub metrics_textfile: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage keys
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Create the repository on every configured target (idempotent)
    Init,
    /// Back up configured sources, files or a command's output
    Backup(commands::backup::BackupArgs),
    /// List backups (25 a page on a terminal); filter by source, kind, status, tag, tenant, dates
    List(commands::list::ListArgs),
    /// Everything about one backup: sizes, targets, engine facts, artifacts, row counts, checks, restores
    Show(commands::show::ShowArgs),
    /// Restore a backup into a directory, to stdout, or into PostgreSQL
    Restore(commands::restore::RestoreArgs),
    /// The restore log: every restore, by whom, why and how it ended
    Restores(commands::restores::RestoresArgs),
    /// Check the repository: structure, and with --read-data every byte (no flag: the config's [verify] mode)
    Verify(commands::verify::VerifyArgs),
    /// Apply retention and delete data no backup needs (safe while backups run)
    Prune(commands::prune::PruneArgs),
    /// Copy backups a target lacks from the other targets (catch-up after an outage)
    Sync(commands::sync::SyncArgs),
    /// Manage the local catalog
    #[command(subcommand)]
    Catalog(commands::catalog::CatalogCommand),
    /// WAL archiving for point-in-time recovery (archive_command, restore_command, status)
    #[command(subcommand)]
    Wal(commands::wal::WalCommand),
    /// Check the setup: keys, targets (credentials, clock, permissions), PostgreSQL sources, schedules, space; exit 0 pass, 1 warning, 2 failure
    Doctor,
    /// Health dashboard; --check for monitoring (exit 0 ok, 1 warning, 2 critical)
    Status(commands::status::StatusArgs),
    /// The dashboard as one self-contained HTML page (--html FILE) or JSON: health, alerts, sources, storage, charts
    Report(commands::report::ReportArgs),
    /// List, acknowledge and resolve alerts
    Alerts(commands::alerts::AlertsArgs),
    /// Disaster recovery: the runbook (plan), a verified restore (run), test restores (drill), history
    #[command(subcommand)]
    Dr(commands::dr::DrCommand),
    /// Show schedules, print crontab lines, install systemd timers
    #[command(subcommand)]
    Schedule(commands::schedule::ScheduleCommand),
    /// Print shell completions
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

/// What every command gets: global flags and the lazily loaded config.
pub struct Ctx {
    pub global: GlobalArgs,
}

impl Ctx {
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = config::load(&Overrides {
            config: self.global.config.clone(),
            catalog: self.global.catalog.clone(),
            identity_file: self.global.identity.clone(),
        })?;
        if let Some(m) = &self.global.metrics_textfile {
            config.metrics_textfile = Some(m.clone());
        }
        Ok(config)
    }

    /// `v` as JSON with `--json`, else `text` prints it for people; the
    /// command has succeeded.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        v: &T,
        text: impl FnOnce(&T) -> anyhow::Result<()>,
    ) -> anyhow::Result<ExitStatus> {
        if self.global.json {
            output::json(v)?;
        } else {
            text(v)?;
        }
        Ok(ExitStatus::Success)
    }

    pub fn progress(&self) -> output::CliProgress {
        output::CliProgress::new(self.global.no_progress || self.global.quiet > 0)
    }

    /// What a job needs from the command line: the config, a progress sink,
    /// and who confirms writes (`yes`: already confirmed).
    pub fn job<'a>(&self, config: &'a Config, yes: bool) -> crate::jobs::Job<'a> {
        crate::jobs::Job {
            config,
            progress: std::sync::Arc::new(self.progress()),
            confirm: if yes {
                &crate::jobs::Confirmed
            } else {
                &output::TerminalConfirm
            },
        }
    }
}

fn init_logging(g: &GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let level = match (g.verbose as i32) - (g.quiet as i32) {
        i32::MIN..=-1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("vaultctl={level}")));
    let color = output::stderr_color();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::redact::LogWriter::default)
        .with_ansi(color)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    // The one read of the environment the core relies on (libpq defaults,
    // the operator, test hooks); the config reads its own variables.
    crate::settings::install(crate::settings::Environment::from_process());
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitStatus::Usage
            } else {
                ExitStatus::Success
            };
            let _ = e.print();
            return code.code();
        }
    };
    init_logging(&cli.global);
    let ctx = Ctx { global: cli.global };
    let result: anyhow::Result<ExitStatus> = match cli.command {
        Command::Key(c) => commands::key::run(&ctx, c),
        Command::Init => commands::init::run(&ctx),
        Command::Backup(a) => commands::backup::run(&ctx, a),
        Command::List(a) => commands::list::run(&ctx, a),
        Command::Show(a) => commands::show::run(&ctx, a),
        Command::Restore(a) => commands::restore::run(&ctx, a),
        Command::Restores(a) => commands::restores::run(&ctx, a),
        Command::Verify(a) => commands::verify::run(&ctx, a),
        Command::Prune(a) => commands::prune::run(&ctx, a),
        Command::Sync(a) => commands::sync::run(&ctx, a),
        Command::Catalog(c) => commands::catalog::run(&ctx, c),
        Command::Wal(c) => commands::wal::run(&ctx, c),
        Command::Status(a) => return finish(commands::status::run(&ctx, a)),
        Command::Report(a) => commands::report::run(&ctx, a),
        Command::Doctor => return finish(commands::doctor::run(&ctx)),
        Command::Alerts(a) => commands::alerts::run(&ctx, a),
        Command::Schedule(c) => commands::schedule::run(&ctx, c),
        Command::Dr(c) => commands::dr::run(&ctx, c),
        Command::Completions { shell } => commands::docs::completions(shell),
        Command::Man => commands::docs::man(),
    };
    finish(result.map(ExitStatus::code))
}

/// The exit code of a command's result; errors are printed here, once.
fn finish(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) if crate::error::is_broken_pipe(&e) => ExitStatus::Success.code(),
        Err(e) => {
            eprintln!("vaultctl: error: {}", paragraph(&e));
            exit_status(&e).code()
        }
    }
}

/// The clap command, for man page and completion generation.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_valid() {
        super::command().debug_assert();
    }
}
