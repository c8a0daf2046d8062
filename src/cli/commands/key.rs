//! `vaultctl key`: key generation.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use crate::cli::{output, Ctx};
use crate::error::ExitStatus;
use crate::repo::keys;

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Write a new age identity (mode 0600) and print its public recipient
    Generate {
        /// Where to write the identity; never overwritten
        #[arg(long, short)]
        output: PathBuf,
    },
}

pub fn run(ctx: &Ctx, cmd: KeyCommand) -> Result<ExitStatus> {
    match cmd {
        KeyCommand::Generate { output: path } => {
            let public = keys::generate_identity(&path)?;
            if ctx.global.json {
                output::json(&serde_json::json!({ "identity_file": path, "recipient": public }))?;
            } else {
                output::line(&public)?;
                if ctx.global.quiet == 0 {
                    eprintln!(
                        "vaultctl: wrote the identity to {}. Put the public key above in keys.recipients; keep the identity off write-only backup hosts and store a copy safely offline.",
                        path.display()
                    );
                }
            }
            Ok(ExitStatus::Success)
        }
    }
}
