//! `vaultctl completions` and `vaultctl man`: generated from the clap
//! definition, the same way as the committed files under `completions/`
//! and `man/`.

use anyhow::Result;

pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut out = Vec::new();
    write_completions(shell, &mut out);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
    Ok(0)
}

pub fn write_completions(shell: clap_complete::Shell, out: &mut Vec<u8>) {
    let mut cmd = crate::cli::command();
    clap_complete::generate(shell, &mut cmd, "vaultctl", out);
}

pub fn man() -> Result<i32> {
    let out = man_page()?;
    std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
    Ok(0)
}

pub fn man_page() -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(crate::cli::command()).render(&mut out)?;
    Ok(out)
}
