//! What is backed up and how it is restored: sources produce artifact
//! streams for the pipeline, sinks consume restored streams.

pub mod command;
pub mod files;
pub mod postgres;

use crate::config::{Source as SourceConfig, SourceSpec};
use crate::repo::backup::Source;

/// Builds the source for a configured `[[source]]`.
pub fn from_config(s: &SourceConfig) -> Box<dyn Source> {
    match &s.spec {
        SourceSpec::Files { paths } => Box::new(files::FilesSource::new(paths.clone())),
        SourceSpec::Command { argv, tar } => {
            Box::new(command::CommandSource::new(argv.clone(), *tar))
        }
        SourceSpec::Postgres(p) => Box::new(postgres::dump::FullDump::new(p.clone())),
        SourceSpec::PostgresPhysical(p) => Box::new(postgres::physical::BaseBackup::new(p.clone())),
    }
}

/// Builds a tenant-scoped backup of a configured postgres source.
pub fn tenant_source(
    s: &SourceConfig,
    selection: postgres::tenants::Selection,
    spill_dir: std::path::PathBuf,
) -> anyhow::Result<Box<dyn Source>> {
    match &s.spec {
        SourceSpec::Postgres(p) => Ok(Box::new(postgres::tenants::TenantExport::new(
            p.clone(),
            selection,
            spill_dir,
        )?)),
        other => crate::error::fail(
            crate::error::ExitStatus::Usage,
            format!(
                "--tenant and --all-tenants need a postgres source; '{}' is a {} source.",
                s.name,
                other.kind()
            ),
            "Name a source of kind postgres with a [source.tenants] table.",
        ),
    }
}
