//! systemd units and crontab lines for scheduled sources.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Config, Location, Origin, Secret, Source, VerifyMode};

/// Randomized start delay of every timer (spreads load across hosts).
pub const RANDOMIZED_DELAY: &str = "15m";

pub fn unit_name(source: &str) -> String {
    format!("vaultctl-backup-{source}")
}

/// The units that run due one-shot backups (`backup --at`).
pub const ONESHOT_UNIT: &str = "vaultctl-oneshot";

/// How often due one-shot backups are looked for (`OnCalendar`; the
/// crontab line runs every minute too).
pub const ONESHOT_ON_CALENDAR: &str = "minutely";

/// The command line that runs due one-shot backups.
pub fn oneshot_command_line(binary: &Path, config: &Config) -> String {
    format!(
        "{} --no-progress --quiet schedule run-due",
        invocation(binary, config)
    )
}

/// The `.service` unit that runs due one-shot backups.
pub fn oneshot_service(config: &Config, binary: &Path) -> String {
    service_unit(
        config,
        "vaultctl: run the one-shot backups that are due (backup --at)",
        &oneshot_command_line(binary, config),
        &[
            "# Exit 3 = completed, but a target missed a backup, or a one-shot was missed (an alert is raised).",
            "SuccessExitStatus=3",
        ],
    )
}

/// The `.timer` unit that runs due one-shot backups every minute.
pub fn oneshot_timer() -> String {
    timer_unit(
        "vaultctl: look for due one-shot backups every minute",
        &[format!("OnCalendar={ONESHOT_ON_CALENDAR}")],
        ONESHOT_UNIT,
    )
}

/// The WAL-archive check units of a postgres-physical source.
pub fn walcheck_unit_name(source: &str) -> String {
    format!("vaultctl-walcheck-{source}")
}

/// The verify units of `target` (`[verify]` with a schedule).
pub fn verify_unit_name(target: &str) -> String {
    format!("vaultctl-verify-{target}")
}

/// The DR drill units of `source` (`[source.drill]` with a schedule).
pub fn drill_unit_name(source: &str) -> String {
    format!("vaultctl-drill-{source}")
}

/// How often the WAL archive of a postgres-physical source is checked
/// (`OnCalendar`; the crontab line says the same): a failing
/// `archive_command` must not go unnoticed for long.
pub const WALCHECK_ON_CALENDAR: &str = "*:0/15";

/// The binary and `--config`, as scheduled runs call them.
fn invocation(binary: &Path, config: &Config) -> String {
    let mut cmd = quote(&binary.display().to_string());
    if let Origin::File(p) = &config.origin {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        let _ = write!(cmd, " --config {}", quote(&abs.display().to_string()));
    }
    cmd
}

/// The command line a scheduled run executes.
pub fn command_line(binary: &Path, config: &Config, source: &str) -> String {
    format!(
        "{} --no-progress backup {source}",
        invocation(binary, config)
    )
}

/// The command line of the periodic WAL-archive check of `source`.
pub fn walcheck_command_line(binary: &Path, config: &Config, source: &str) -> String {
    format!(
        "{} --quiet wal status --source {source}",
        invocation(binary, config)
    )
}

/// The command line of the scheduled verify of `target`, in the `[verify]` mode.
pub fn verify_command_line(binary: &Path, config: &Config, target: &str) -> String {
    let mode = match config.verify.as_ref().map(|v| v.mode) {
        Some(VerifyMode::ReadData) => " --read-data".to_string(),
        Some(VerifyMode::Sample(p)) => format!(" --sample {p}"),
        Some(VerifyMode::Structure) | None => String::new(),
    };
    format!(
        "{} --no-progress verify --target {target}{mode}",
        invocation(binary, config)
    )
}

/// The command line of the scheduled DR drill of `source`.
pub fn drill_command_line(binary: &Path, config: &Config, source: &Source) -> String {
    let mut cmd = format!(
        "{} --no-progress dr drill --source {}",
        invocation(binary, config),
        source.name
    );
    if let Some(d) = &source.drill {
        if let Some(url) = &d.scratch_db {
            let _ = write!(cmd, " --scratch-db {}", quote(url));
        }
        if let Some(p) = &d.password_file {
            let _ = write!(cmd, " --password-file {}", quote(&p.display().to_string()));
        }
    }
    cmd
}

/// A verify or drill the config asks for (`schedule show`).
pub struct Check<'a> {
    /// `verify` or `drill`.
    pub job: &'static str,
    /// The target verified or the source drilled.
    pub subject: &'a str,
    pub schedule: Option<&'a crate::ops::schedule::Schedule>,
    pub max_age: Option<std::time::Duration>,
    /// The vaultctl arguments a scheduled run uses.
    pub args: String,
}

/// The subcommand part of a scheduled command line.
fn after_flags(line: &str) -> String {
    line.split_once("--no-progress ")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| line.to_string())
}

/// Every configured verify (per target) and drill (per source).
pub fn checks(config: &Config) -> Vec<Check<'_>> {
    let mut out = Vec::new();
    if let Some(v) = &config.verify {
        for t in &v.targets {
            let line = verify_command_line(Path::new(""), config, t);
            out.push(Check {
                job: "verify",
                subject: t,
                schedule: v.schedule.as_ref(),
                max_age: v.max_age(),
                args: after_flags(&line),
            });
        }
    }
    for s in &config.sources {
        if let Some(d) = &s.drill {
            let line = drill_command_line(Path::new(""), config, s);
            out.push(Check {
                job: "drill",
                subject: &s.name,
                schedule: d.schedule.as_ref(),
                max_age: d.max_age(),
                args: after_flags(&line),
            });
        }
    }
    out
}

/// The targets verified on a schedule (`[verify]` with `schedule`).
pub fn verify_targets(config: &Config) -> Vec<&str> {
    match &config.verify {
        Some(v) if v.schedule.is_some() => v.targets.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The sources with a scheduled DR drill.
pub fn drill_sources(config: &Config) -> Vec<&Source> {
    config
        .sources
        .iter()
        .filter(|s| s.drill.as_ref().is_some_and(|d| d.schedule.is_some()))
        .collect()
}

/// The sources whose WAL archive is checked periodically.
pub fn physical_sources(config: &Config) -> Vec<&Source> {
    config
        .sources
        .iter()
        .filter(|s| matches!(s.spec, crate::config::SourceSpec::PostgresPhysical(_)))
        .collect()
}

fn quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-_.,:=@+".contains(c))
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn secret_files(config: &Config) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for n in &config.notify {
        if let crate::config::NotifyKind::Webhook { url, .. } = &n.kind {
            out.extend(url.file().map(Path::to_path_buf));
        }
    }
    for t in &config.targets {
        if let Location::S3 {
            access_key_id,
            secret_access_key,
            ..
        } = &t.location
        {
            for s in [access_key_id, secret_access_key].into_iter().flatten() {
                if let Secret::File(p) = s {
                    out.push(p.clone());
                }
            }
        }
    }
    out
}

/// The `.service` unit for `source`.
pub fn service(config: &Config, source: &Source, binary: &Path) -> String {
    service_unit(
        config,
        &format!("vaultctl backup of source {}", source.name),
        &command_line(binary, config, &source.name),
        &[
            "# Exit 3 = completed, but a target missed the backup (an alert is raised).",
            "SuccessExitStatus=3",
        ],
    )
}

/// The `.service` unit of the WAL-archive check of `source`: it fails (exit
/// 1) and raises the critical `wal_archive` alert on a gap or a stall.
pub fn walcheck_service(config: &Config, source: &Source, binary: &Path) -> String {
    service_unit(
        config,
        &format!(
            "vaultctl check of the WAL archive of source {}",
            source.name
        ),
        &walcheck_command_line(binary, config, &source.name),
        &["# Exit 1 = a gap, a stall or a failing archive_command (a critical alert is raised)."],
    )
}

/// The `.service` unit of the scheduled verify of `target`: exit 1 (and the
/// critical `verify_failed` alert) when it finds damage.
pub fn verify_service(config: &Config, target: &str, binary: &Path) -> String {
    service_unit(
        config,
        &format!("vaultctl verify of target {target}"),
        &verify_command_line(binary, config, target),
        &with_identity(
            config,
            "# Exit 1 = the verify found problems (a critical verify_failed alert is raised).",
        ),
    )
}

/// The `.service` unit of the scheduled DR drill of `source`.
pub fn drill_service(config: &Config, source: &Source, binary: &Path) -> String {
    service_unit(
        config,
        &format!("vaultctl DR drill (test restore) of source {}", source.name),
        &drill_command_line(binary, config, source),
        &with_identity(
            config,
            "# Exit 1 = the test restore failed (a critical dr_drill_failed alert is raised).",
        ),
    )
}

/// `first`, then the identity as a credential when this host has one: a
/// verify reads blob contents and stream hashes with it, a drill needs it.
fn with_identity(config: &Config, first: &str) -> Vec<String> {
    let mut lines = vec![first.to_string()];
    if let Some(id) = config.keys.identity_file.as_ref().filter(|p| p.exists()) {
        lines.push(format!("LoadCredential=identity.txt:{}", id.display()));
        lines.push("Environment=VAULTCTL_IDENTITY_FILE=%d/identity.txt".into());
    }
    lines
}

/// The `.timer` unit of the scheduled verify of `target`.
pub fn verify_timer(config: &Config, target: &str) -> String {
    scheduled_timer(
        &format!("Scheduled vaultctl verify of target {target}"),
        config.verify.as_ref().and_then(|v| v.schedule.as_ref()),
        "verify",
        &verify_unit_name(target),
    )
}

/// The `.timer` unit of the scheduled DR drill of `source`.
pub fn drill_timer(source: &Source) -> String {
    scheduled_timer(
        &format!("Scheduled vaultctl DR drill of source {}", source.name),
        source.drill.as_ref().and_then(|d| d.schedule.as_ref()),
        "drill",
        &drill_unit_name(&source.name),
    )
}

/// What a service runs with: the credentials systemd hands it, the paths it
/// may write under `ProtectSystem=strict`, and the user it runs as.
struct Runtime {
    dedup_key: PathBuf,
    secret_files: Vec<PathBuf>,
    read_write: Vec<PathBuf>,
    user: Option<&'static str>,
}

impl Runtime {
    /// From the config (`schedule install --systemd`): runs as root.
    fn of(config: &Config) -> Runtime {
        let mut rw: Vec<PathBuf> = vec![config
            .catalog
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(STATE_DIR))];
        for t in &config.targets {
            if let Location::Local { path } = &t.location {
                rw.push(path.clone());
            }
        }
        if let Some(m) = config.metrics_textfile.as_ref().and_then(|m| m.parent()) {
            rw.push(m.to_path_buf());
        }
        rw.dedup();
        Runtime {
            dedup_key: config.keys.dedup_key_file.clone(),
            secret_files: secret_files(config),
            read_write: rw,
            user: None,
        }
    }

    /// The Debian package's template units: the `vaultctl` system user, the
    /// files the package's README.Debian names.
    fn packaged() -> Runtime {
        Runtime {
            dedup_key: PathBuf::from(PACKAGE_DEDUP_KEY),
            secret_files: Vec::new(),
            read_write: vec![
                PathBuf::from(STATE_DIR),
                PathBuf::from("/var/backups/vaultctl"),
                PathBuf::from("/var/lib/node_exporter/textfile"),
            ],
            user: Some(PACKAGE_USER),
        }
    }
}

const GENERATED_HEADER: &str = "# Generated by `vaultctl schedule install --systemd`; regenerate it after changing the config.";
const PACKAGED_HEADER: &str =
    "# Installed by the vaultctl Debian package; change it with `systemctl edit` (a drop-in).";

/// vaultctl's state directory (catalog, spool) on a system install.
pub const STATE_DIR: &str = "/var/lib/vaultctl";
/// The system user the Debian package's units run as.
pub const PACKAGE_USER: &str = "vaultctl";
/// The config the Debian package's units read.
pub const PACKAGE_CONFIG: &str = "/etc/vaultctl/config.toml";
const PACKAGE_DEDUP_KEY: &str = "/etc/vaultctl/dedup.key";
const PACKAGE_IDENTITY: &str = "/etc/vaultctl/identity.txt";

fn service_unit<S: AsRef<str>>(
    config: &Config,
    description: &str,
    exec: &str,
    extra: &[S],
) -> String {
    // systemd expands `%` specifiers in ExecStart=: a literal one is `%%`.
    render_service(
        &Runtime::of(config),
        description,
        &exec.replace('%', "%%"),
        extra,
    )
}

/// A `.service` unit; `exec` is the ExecStart= value with its `%`
/// specifiers already escaped (or meant, like a template's `%i`).
fn render_service<S: AsRef<str>>(
    rt: &Runtime,
    description: &str,
    exec: &str,
    extra: &[S],
) -> String {
    let mut u = String::new();
    let header = if rt.user.is_some() {
        PACKAGED_HEADER
    } else {
        GENERATED_HEADER
    };
    let _ = writeln!(u, "{header}");
    let _ = writeln!(u, "[Unit]");
    let _ = writeln!(u, "Description={description}");
    let _ = writeln!(u, "Wants=network-online.target");
    let _ = writeln!(u, "After=network-online.target");
    let _ = writeln!(u);
    let _ = writeln!(u, "[Service]");
    let _ = writeln!(u, "Type=oneshot");
    if let Some(user) = rt.user {
        let _ = writeln!(u, "User={user}");
        let _ = writeln!(u, "Group={user}");
        let _ = writeln!(u, "# {STATE_DIR}, owned by {user}, mode 0700.");
        let _ = writeln!(u, "StateDirectory=vaultctl");
        let _ = writeln!(u, "StateDirectoryMode=0700");
    }
    let _ = writeln!(u, "ExecStart={exec}");
    for line in extra {
        let _ = writeln!(u, "{}", line.as_ref());
    }
    let _ = writeln!(u, "Nice=19");
    let _ = writeln!(u, "IOSchedulingClass=idle");
    let _ = writeln!(u, "CPUSchedulingPolicy=batch");
    credentials(&mut u, rt);
    hardening(&mut u, rt);
    u
}

/// The secrets a unit's service gets: systemd credentials for the dedup key
/// and secret files, and the environment file for `*_env` secrets.
fn credentials(u: &mut String, rt: &Runtime) {
    let _ = writeln!(
        u,
        "# Secrets are passed as credentials: systemd copies them to $CREDENTIALS_DIRECTORY,"
    );
    let _ = writeln!(
        u,
        "# where vaultctl looks up relative secret file names from the config first."
    );
    let _ = writeln!(u, "LoadCredential=dedup.key:{}", rt.dedup_key.display());
    let _ = writeln!(u, "Environment=VAULTCTL_DEDUP_KEY_FILE=%d/dedup.key");
    for p in &rt.secret_files {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let _ = writeln!(u, "LoadCredential={name}:{}", p.display());
    }
    let _ = writeln!(
        u,
        "# Secrets named by *_env keys (e.g. R2_SECRET_ACCESS_KEY) go in this file, mode 0600."
    );
    let _ = writeln!(u, "EnvironmentFile=-/etc/vaultctl/environment");
}

/// The sandboxing: read the whole system, write only vaultctl's own state.
fn hardening(u: &mut String, rt: &Runtime) {
    let _ = writeln!(
        u,
        "# Hardening: read the whole system, write only vaultctl's own state."
    );
    let _ = writeln!(
        u,
        "ReadWritePaths={}",
        rt.read_write
            .iter()
            .map(|p| format!("-{}", p.display()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for line in [
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "NoNewPrivileges=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
        "UMask=0077",
    ] {
        let _ = writeln!(u, "{line}");
    }
}

/// The Debian package's template units, as (file name, contents): one
/// instance per source (`vaultctl-backup@SOURCE.timer`, the WAL check
/// `vaultctl-walcheck@SOURCE.timer`, the drill `vaultctl-drill@SOURCE.timer`),
/// running `/usr/bin/vaultctl` with `/etc/vaultctl/config.toml` as the
/// `vaultctl` user. A template timer has one schedule for every instance:
/// change it per instance with `systemctl edit` (an `OnCalendar=` drop-in).
/// Committed under `debian/units/` (a test keeps them fresh).
pub fn packaged_units() -> Vec<(String, String)> {
    let rt = Runtime::packaged();
    let inv = format!("/usr/bin/vaultctl --config {PACKAGE_CONFIG}");
    let identity = [
        format!("LoadCredential=identity.txt:{PACKAGE_IDENTITY}"),
        "Environment=VAULTCTL_IDENTITY_FILE=%d/identity.txt".to_string(),
    ];
    let daily = ["OnCalendar=daily".to_string()];
    let weekly = ["OnCalendar=weekly".to_string()];
    let mut out = Vec::new();
    let mut add = |base: &str, service: String, timer: String| {
        out.push((format!("{base}@.service"), service));
        out.push((format!("{base}@.timer"), timer));
    };
    add(
        "vaultctl-backup",
        render_service(
            &rt,
            "vaultctl backup of source %i",
            &format!("{inv} --no-progress backup %i"),
            &[
                "# Exit 3 = completed, but a target missed the backup (an alert is raised).",
                "SuccessExitStatus=3",
            ],
        ),
        instance_timer(
            "Scheduled vaultctl backup of source %i",
            &daily,
            "backup",
            "vaultctl-backup",
        ),
    );
    add(
        "vaultctl-walcheck",
        render_service(
            &rt,
            "vaultctl check of the WAL archive of source %i",
            &format!("{inv} --quiet wal status --source %i"),
            &["# Exit 1 = a gap, a stall or a failing archive_command (a critical alert is raised)."],
        ),
        packaged_timer(timer_unit(
            "Periodic vaultctl check of the WAL archive of source %i",
            &[format!("OnCalendar={WALCHECK_ON_CALENDAR}")],
            "vaultctl-walcheck@%i",
        )),
    );
    let mut drill_extra = vec![
        "# Exit 1 = the test restore failed (a critical dr_drill_failed alert is raised)."
            .to_string(),
    ];
    drill_extra.extend(identity);
    add(
        "vaultctl-drill",
        render_service(
            &rt,
            "vaultctl DR drill (test restore) of source %i",
            &format!("{inv} --no-progress dr drill --source %i"),
            &drill_extra,
        ),
        instance_timer(
            "Scheduled vaultctl DR drill of source %i",
            &weekly,
            "drill",
            "vaultctl-drill",
        ),
    );
    out
}

/// A template timer: a default schedule, a missed run caught up at boot and
/// a randomized delay, starting the same instance of `base@.service`.
fn instance_timer(description: &str, when: &[String], what: &str, base: &str) -> String {
    let mut lines = vec![
        "# The default schedule (UTC); override it per instance with `systemctl edit`.".to_string(),
    ];
    lines.extend(when.iter().cloned());
    push_catch_up(&mut lines, what);
    packaged_timer(timer_unit(description, &lines, &format!("{base}@%i")))
}

fn packaged_timer(unit: String) -> String {
    unit.replacen(GENERATED_HEADER, PACKAGED_HEADER, 1)
}

fn push_catch_up(lines: &mut Vec<String>, what: &str) {
    lines.push(format!(
        "# Run a missed {what} at boot (the machine was off at the scheduled time)."
    ));
    lines.push("Persistent=true".into());
    lines.push(format!("RandomizedDelaySec={RANDOMIZED_DELAY}"));
}

/// The `.timer` unit for `source` (which must have a schedule).
pub fn timer(source: &Source) -> String {
    scheduled_timer(
        &format!("Scheduled vaultctl backup of source {}", source.name),
        source.schedule.as_ref(),
        "backup",
        &unit_name(&source.name),
    )
}

/// A `.timer` for a configured schedule: `OnCalendar=` lines, a missed run
/// caught up at boot, and a randomized delay.
fn scheduled_timer(
    description: &str,
    schedule: Option<&crate::ops::schedule::Schedule>,
    what: &str,
    unit: &str,
) -> String {
    let mut lines = Vec::new();
    if let Some(s) = schedule {
        lines.push(format!("# schedule = \"{}\" (UTC)", s.text));
        lines.extend(s.on_calendar().iter().map(|c| format!("OnCalendar={c}")));
    }
    push_catch_up(&mut lines, what);
    timer_unit(description, &lines, unit)
}

/// The `.timer` unit of the WAL-archive check of `source`.
pub fn walcheck_timer(source: &Source) -> String {
    timer_unit(
        &format!(
            "Periodic vaultctl check of the WAL archive of source {}",
            source.name
        ),
        &[format!("OnCalendar={WALCHECK_ON_CALENDAR}")],
        &walcheck_unit_name(&source.name),
    )
}

/// A `.timer` unit: `when` are its schedule lines, `unit` the service's base name.
fn timer_unit(description: &str, when: &[String], unit: &str) -> String {
    let mut u = String::new();
    let _ = writeln!(u, "{GENERATED_HEADER}");
    let _ = writeln!(u, "[Unit]");
    let _ = writeln!(u, "Description={description}");
    let _ = writeln!(u);
    let _ = writeln!(u, "[Timer]");
    for line in when {
        let _ = writeln!(u, "{line}");
    }
    let _ = writeln!(u, "AccuracySec=1m");
    let _ = writeln!(u, "Unit={unit}.service");
    let _ = writeln!(u);
    let _ = writeln!(u, "[Install]");
    let _ = writeln!(u, "WantedBy=timers.target");
    u
}

/// Crontab lines (user crontab format: no user field) for every scheduled source.
pub fn crontab(config: &Config, binary: &Path) -> String {
    let mut out = String::from(
        "# vaultctl backups (times are UTC: set CRON_TZ=UTC where cron supports it)\nCRON_TZ=UTC\n",
    );
    for s in config.sources.iter() {
        let Some(sch) = &s.schedule else { continue };
        for (fields, note) in sch.cron_fields() {
            if let Some(n) = note {
                let _ = writeln!(out, "# {}: {n}", s.name);
            }
            let _ = writeln!(out, "{fields} {}", command_line(binary, config, &s.name));
        }
    }
    if let Some(sch) = config.verify.as_ref().and_then(|v| v.schedule.as_ref()) {
        for t in verify_targets(config) {
            for (fields, note) in sch.cron_fields() {
                if let Some(n) = note {
                    let _ = writeln!(out, "# verify {t}: {n}");
                }
                let _ = writeln!(
                    out,
                    "{fields} {}",
                    cron_escape(&verify_command_line(binary, config, t))
                );
            }
        }
    }
    for s in drill_sources(config) {
        let Some(sch) = s.drill.as_ref().and_then(|d| d.schedule.as_ref()) else {
            continue;
        };
        for (fields, note) in sch.cron_fields() {
            if let Some(n) = note {
                let _ = writeln!(out, "# drill {}: {n}", s.name);
            }
            let _ = writeln!(
                out,
                "{fields} {}",
                cron_escape(&drill_command_line(binary, config, s))
            );
        }
    }
    let _ = writeln!(
        out,
        "# one-shot backups (`backup --at`): run the due ones every minute"
    );
    let _ = writeln!(out, "* * * * * {}", oneshot_command_line(binary, config));
    for s in physical_sources(config) {
        let _ = writeln!(
            out,
            "# {}: the WAL archive, every 15 minutes (exit 1 and a critical alert on a gap or stall)",
            s.name
        );
        let _ = writeln!(
            out,
            "*/15 * * * * {}",
            walcheck_command_line(binary, config, &s.name)
        );
    }
    out
}

/// cron turns an unescaped `%` in the command into a newline.
fn cron_escape(cmd: &str) -> String {
    cmd.replace('%', "\\%")
}

/// One unit pair `schedule install` writes: `NAME.service` and `NAME.timer`.
pub struct UnitPair {
    pub name: String,
    pub service: String,
    pub timer: String,
}

/// Every unit pair of this configuration: the scheduled backups, the WAL
/// checks of postgres-physical sources, scheduled verifies and drills, and
/// the one-shot runner (always, so that `backup --at` works once installed).
pub fn all_units(config: &Config, binary: &Path) -> Vec<UnitPair> {
    let pair = |name, service, timer| UnitPair {
        name,
        service,
        timer,
    };
    let mut out: Vec<UnitPair> = config
        .sources
        .iter()
        .filter(|s| s.schedule.is_some())
        .map(|s| pair(unit_name(&s.name), service(config, s, binary), timer(s)))
        .collect();
    out.extend(physical_sources(config).into_iter().map(|s| {
        pair(
            walcheck_unit_name(&s.name),
            walcheck_service(config, s, binary),
            walcheck_timer(s),
        )
    }));
    out.extend(verify_targets(config).into_iter().map(|t| {
        pair(
            verify_unit_name(t),
            verify_service(config, t, binary),
            verify_timer(config, t),
        )
    }));
    out.extend(drill_sources(config).into_iter().map(|s| {
        pair(
            drill_unit_name(&s.name),
            drill_service(config, s, binary),
            drill_timer(s),
        )
    }));
    out.push(pair(
        ONESHOT_UNIT.to_string(),
        oneshot_service(config, binary),
        oneshot_timer(),
    ));
    out
}

/// Writes [`all_units`] into `dir` (each file atomically) and returns the
/// paths written.
pub fn install(config: &Config, dir: &Path, binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context as _;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for u in all_units(config, binary) {
        for (ext, text) in [("service", u.service), ("timer", u.timer)] {
            let path = dir.join(format!("{}.{ext}", u.name));
            crate::ops::metrics::write_atomic(&path, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// One scheduled job as `schedule show` lists it: a source's backup, or a
/// target's verify, or a source's drill.
#[derive(Debug, serde::Serialize)]
pub struct ScheduledJob {
    /// `backup`, `verify` or `drill`.
    pub job: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub schedule: Option<String>,
    pub on_calendar: Option<Vec<String>>,
    pub next_run: Option<String>,
    pub stale_after_secs: Option<u64>,
    /// Backups: whether a healthcheck URL is pinged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck_url: Option<bool>,
    /// Verifies and drills: the vaultctl arguments a scheduled run uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl ScheduledJob {
    /// The source or target the job is about.
    pub fn subject(&self) -> &str {
        self.source
            .as_deref()
            .or(self.target.as_deref())
            .unwrap_or("")
    }
}

/// Every source's backup schedule (scheduled or not), then every
/// configured verify and drill, with next runs after `now`.
pub fn scheduled_jobs(config: &Config, now: time::OffsetDateTime) -> Vec<ScheduledJob> {
    let row = |job,
               schedule: Option<&crate::schedule::Schedule>,
               max_age: Option<std::time::Duration>| ScheduledJob {
        job,
        source: None,
        target: None,
        schedule: schedule.map(|x| x.text.clone()),
        on_calendar: schedule.map(|x| x.on_calendar()),
        next_run: schedule
            .and_then(|x| x.next_after(now))
            .map(crate::clock::format),
        stale_after_secs: max_age.map(|d| d.as_secs()),
        healthcheck_url: None,
        command: None,
    };
    let backups = config.sources.iter().map(|s| ScheduledJob {
        source: Some(s.name.clone()),
        healthcheck_url: Some(s.healthcheck_url.is_some()),
        ..row(
            "backup",
            s.schedule.as_ref(),
            crate::ops::health::stale_threshold(s),
        )
    });
    let checks = checks(config).into_iter().map(|c| {
        let subject = Some(c.subject.to_string());
        let (source, target) = if c.job == "verify" {
            (None, subject)
        } else {
            (subject, None)
        };
        ScheduledJob {
            source,
            target,
            command: Some(c.args.clone()),
            ..row(c.job, c.schedule, c.max_age)
        }
    });
    backups.chain(checks).collect()
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The Debian package ships `debian/units/`, rendered here: one source
    /// of truth for the hardening. `cargo test --lib write_packaged_units
    /// -- --ignored` rewrites them after a change.
    #[test]
    fn packaged_units_are_fresh() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/units");
        let units = packaged_units();
        let mut committed: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        committed.sort();
        let mut names: Vec<String> = units.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        assert_eq!(
            committed, names,
            "debian/units/ holds other files than packaged_units() renders"
        );
        for (name, text) in &units {
            let on_disk = std::fs::read_to_string(dir.join(name)).unwrap();
            assert_eq!(
                &on_disk, text,
                "debian/units/{name} is stale: run cargo test --lib write_packaged_units -- --ignored"
            );
        }
    }

    /// Rewrites `debian/units/` from [`packaged_units`] (run by hand, see
    /// [`packaged_units_are_fresh`]).
    #[test]
    #[ignore = "writes debian/units/; run with --ignored after changing the units"]
    fn write_packaged_units() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/units");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in packaged_units() {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn packaged_units_run_as_the_vaultctl_user_with_the_hardening() {
        for (name, text) in packaged_units() {
            assert!(text.starts_with(PACKAGED_HEADER), "{name}");
            if name.ends_with(".service") {
                for line in [
                    "User=vaultctl",
                    "StateDirectoryMode=0700",
                    "LoadCredential=dedup.key:/etc/vaultctl/dedup.key",
                    "ProtectSystem=strict",
                    "Nice=19",
                    "IOSchedulingClass=idle",
                ] {
                    assert!(text.lines().any(|l| l == line), "{name} lacks {line}");
                }
                assert!(text.contains(" %i\n"), "{name}: the instance is the source");
            } else {
                let base = name.trim_end_matches("@.timer");
                assert!(
                    text.contains(&format!("Unit={base}@%i.service\n")),
                    "{name}"
                );
                if !name.starts_with("vaultctl-walcheck") {
                    assert!(text.contains("Persistent=true\n"), "{name}");
                    assert!(text.contains("RandomizedDelaySec=15m\n"), "{name}");
                }
            }
        }
    }
}
