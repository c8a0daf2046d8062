//! One module per subcommand.

pub mod backup;
pub mod catalog;
pub mod docs;
pub mod init;
pub mod key;
pub mod list;
pub mod pitr;
pub mod restore;
pub mod restores;
pub mod verify;
pub mod wal;
