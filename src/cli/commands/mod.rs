//! One module per subcommand.

pub mod alerts;
pub mod backup;
pub mod catalog;
pub mod docs;
pub mod doctor;
pub mod dr;
pub mod init;
pub mod key;
pub mod list;
pub mod pitr;
pub mod prune;
pub mod report;
pub mod restore;
pub mod restores;
pub mod schedule;
pub mod show;
pub mod status;
pub mod sync;
pub mod tenant_pitr;
pub mod verify;
pub mod wal;
pub mod wizard;
