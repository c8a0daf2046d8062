//! `vaultctl completions` and `vaultctl man`: generated from the clap
//! definition, the same way as the committed files under `completions/`
//! and `man/`.

use anyhow::Result;

use crate::error::ExitStatus;

pub fn completions(shell: clap_complete::Shell) -> Result<ExitStatus> {
    let mut out = Vec::new();
    write_completions(shell, &mut out);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
    Ok(ExitStatus::Success)
}

pub fn write_completions(shell: clap_complete::Shell, out: &mut Vec<u8>) {
    let mut cmd = crate::cli::command();
    clap_complete::generate(shell, &mut cmd, "vaultctl", out);
}

pub fn man() -> Result<ExitStatus> {
    let out = man_page()?;
    std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
    Ok(ExitStatus::Success)
}

/// The whole man page: the top level, then every subcommand's synopsis,
/// description and options, so `man vaultctl` documents every flag.
pub fn man_page() -> Result<Vec<u8>> {
    let cmd = crate::cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone().after_help(None::<&str>)).render(&mut out)?;
    let mut subs = Vec::new();
    collect_leaves(&cmd, "vaultctl", &mut subs);
    for (path, sub) in subs {
        let man = clap_mangen::Man::new(sub.name(path.clone()));
        let mut part = Vec::new();
        man.render_synopsis_section(&mut part)?;
        man.render_description_section(&mut part)?;
        man.render_options_section(&mut part)?;
        let text = String::from_utf8(part)?
            .replacen(
                ".SH SYNOPSIS",
                &format!(".SH \"{}\"", path.to_uppercase()),
                1,
            )
            .replace(".SH DESCRIPTION", ".SS Description")
            .replace(".SH OPTIONS", ".SS Options");
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b".SH \"EXIT STATUS\"\n");
    for status in crate::error::ExitStatus::ALL {
        let (code, meaning) = (status.code(), status.meaning());
        out.extend_from_slice(format!(".TP\n{code}\n{meaning}\n").as_bytes());
    }
    out.extend_from_slice(b".PP\nScripts should treat any other code as a failure. A closed stdout pipe is not an error.\n");
    Ok(out)
}

fn collect_leaves(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("{path} {}", sub.get_name());
        if sub.has_subcommands() && !sub.get_arguments().any(|a| a.is_positional()) {
            collect_leaves(sub, &name, out);
        } else {
            out.push((name.clone(), sub.clone()));
            if sub.has_subcommands() {
                collect_leaves(sub, &name, out);
            }
        }
    }
}
