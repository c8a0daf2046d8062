//! Adversarial tests: objects.

#![allow(unused_imports)]

use crate::common::*;
