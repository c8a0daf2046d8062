//! The adversarial suite (DESIGN §8): what a compromised backup host, a
//! hostile bucket or a race can try, and the proof that each attempt ends in
//! a clear error or a clean skip — never wrong bytes, a command run on the
//! restore host, a lost backup, or a success exit.

mod common;
mod pg;

#[path = "adversarial/engine.rs"]
mod engine;
#[path = "adversarial/hygiene.rs"]
mod hygiene;
#[path = "adversarial/objects.rs"]
mod objects;
#[path = "adversarial/races.rs"]
mod races;
