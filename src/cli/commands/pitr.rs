//! `vaultctl restore … --type pitr`: the flags, checked and handed to the
//! point-in-time restore job ([`crate::jobs::pitr`]), and its outcome
//! printed.

use anyhow::Result;

use super::restore::{PgType, RestoreArgs};
use crate::cli::{output, Ctx};
use crate::engine::postgres::pitr;
use crate::error::{fail, ExitStatus};
use crate::jobs::pitr::{self as job, Base, Request};

fn request(ctx: &Ctx, args: &RestoreArgs) -> Result<Request> {
    let Some(pgdata) = args
        .pgdata
        .clone()
        .filter(|_| args.kind == Some(PgType::Pitr))
    else {
        return fail(
            ExitStatus::Usage,
            "a point-in-time restore needs both --type pitr and --pgdata DIR.",
            "Example: vaultctl restore --source cluster --type pitr --pgdata /var/lib/postgresql/15/restore --to-time 2026-11-22T03:00:00Z",
        );
    };
    if args.to_time.is_none() && !args.to_latest {
        return fail(
            ExitStatus::Usage,
            "say how far to recover: --to-time TIMESTAMP or --to-latest.",
            "--to-latest replays every archived WAL file; --to-time stops before the first transaction committed after it.",
        );
    }
    let settings = job::parse_settings(&args.settings)?;
    let base = match (&args.backup, &args.source) {
        (Some(spec), _) => Base::Backup(spec.clone()),
        (None, Some(source)) => Base::Source(source.clone()),
        (None, None) => unreachable!("clap requires one"),
    };
    Ok(Request {
        base,
        pgdata,
        to_time: args
            .to_time
            .as_deref()
            .map(pitr::parse_target_time)
            .transpose()?,
        start: args.start,
        owner: args.owner.clone(),
        settings,
        pg_bin_dir: args.pg_bin_dir.clone(),
        target: args.target.clone(),
        reason: args.reason.clone(),
        identity: ctx.global.identity.clone(),
    })
}

pub fn run(ctx: &Ctx, args: &RestoreArgs) -> Result<ExitStatus> {
    let req = request(ctx, args)?;
    let config = ctx.config()?;
    let o = job::run(&ctx.job(&config, args.yes), &req)?;
    ctx.emit(&o, |o| output::line(&o.lines().join("\n")))
}
