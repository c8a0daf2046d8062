//! Adversarial tests: backup content turned against the restore host (psql meta-commands, tenant-key injection).

#![allow(unused_imports)]

use crate::common::*;
