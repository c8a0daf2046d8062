//! What is backed up and how it is restored: sources produce artifact
//! streams for the pipeline, sinks consume restored streams.

pub mod command;
pub mod files;

use crate::config::{Source as SourceConfig, SourceSpec};
use crate::repo::backup::Source;

/// Builds the source for a configured `[[source]]`.
pub fn from_config(s: &SourceConfig) -> Box<dyn Source> {
    match &s.spec {
        SourceSpec::Files { paths } => Box::new(files::FilesSource::new(paths.clone())),
        SourceSpec::Command { argv, tar } => {
            Box::new(command::CommandSource::new(argv.clone(), *tar))
        }
    }
}
