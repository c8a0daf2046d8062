//! What each restore type can do with a backup: the wizard's step 2 lists
//! these, with the reason when a type is not available.

use crate::catalog::BackupRow;

/// The restore types the wizard knows, in menu order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Full,
    Merge,
    /// Point-in-time (physical base backup + WAL); offered when a backup supports it.
    Pitr,
    /// Chosen tenants of a live database put back as at a time, from a
    /// physical base backup and WAL ([`super::tenant_pitr`]).
    TenantPitr,
    Directory,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Full => "Full",
            Kind::Merge => "Merge",
            Kind::Pitr => "Point-in-time",
            Kind::TenantPitr => "Point in time, one tenant",
            Kind::Directory => "Directory",
        }
    }

    pub fn explain(self) -> &'static str {
        match self {
            Kind::Full => "schema and data into a new or empty database (created if missing); an existing non-empty database is refused, never overwritten",
            Kind::Merge => "adds the backup's rows to an existing database with the schema in place; existing rows are kept (ON CONFLICT DO NOTHING), all in one transaction",
            Kind::Pitr => "rebuilds a data directory from a base backup and replays WAL up to a chosen time",
            Kind::TenantPitr => "puts chosen tenants of the live database back as they were at a time (base backup and WAL replayed in a sandbox); other tenants' rows are not touched",
            Kind::Directory => "extracts the archive into a directory (which must be empty)",
        }
    }
}

/// One restore type for a backup: available, or why not.
#[derive(Debug, Clone)]
pub struct Offer {
    pub kind: Kind,
    pub unavailable: Option<String>,
}

/// Whether "Point in time, one tenant" applies to a backup, and where from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TenantPitr {
    /// Not for this backup (no physical source, or not a database).
    #[default]
    NotApplicable,
    Unavailable(String),
    Ready {
        /// The `postgres-physical` source whose base backups and WAL replay.
        physical: String,
        /// The `postgres` source whose [source.tenants] names the tenants.
        tenants: String,
    },
}

/// What each restore type can do with `row` (`details`: the catalog's
/// manifest details; `formats`: its artifacts' formats). Point-in-time
/// needs a physical base backup.
pub fn offers(
    row: &BackupRow,
    details: Option<&serde_json::Value>,
    formats: &[String],
    tenant_pitr: &TenantPitr,
) -> Vec<Offer> {
    let mode = details
        .and_then(|d| d["engine"]["mode"].as_str())
        .unwrap_or("full");
    let physical = row.kind == "postgres-physical";
    if row.kind == "postgres" || physical {
        let mut v = vec![
            Offer {
                kind: Kind::Full,
                unavailable: if physical {
                    Some("a physical backup restores as point-in-time".into())
                } else if mode == "tenants" {
                    Some("a tenant export holds rows only, no schema".into())
                } else {
                    None
                },
            },
            Offer {
                kind: Kind::Merge,
                unavailable: physical.then(|| "a physical backup holds files, not rows".into()),
            },
            Offer {
                kind: Kind::Pitr,
                unavailable: if physical {
                    None
                } else {
                    Some("needs a physical base backup: kind postgres-physical".into())
                },
            },
        ];
        match tenant_pitr {
            TenantPitr::NotApplicable => {}
            TenantPitr::Unavailable(why) => v.push(Offer {
                kind: Kind::TenantPitr,
                unavailable: Some(why.clone()),
            }),
            TenantPitr::Ready { .. } => v.push(Offer {
                kind: Kind::TenantPitr,
                unavailable: None,
            }),
        }
        v
    } else {
        vec![Offer {
            kind: Kind::Directory,
            unavailable: if formats.iter().any(|f| f == "tar") || formats.is_empty() {
                None
            } else {
                Some(
                    "this backup is a byte stream: use `vaultctl restore ID --stdout > FILE`"
                        .into(),
                )
            },
        }]
    }
}
