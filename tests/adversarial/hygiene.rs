//! Adversarial tests: hygiene.

#![allow(unused_imports)]

use crate::common::*;
