//! Adversarial tests: races.

#![allow(unused_imports)]

use crate::common::*;
