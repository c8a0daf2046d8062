//! One module per subcommand.

pub mod backup;
pub mod catalog;
pub mod docs;
pub mod init;
pub mod key;
pub mod list;
pub mod prune;
pub mod restore;
pub mod sync;
pub mod verify;
