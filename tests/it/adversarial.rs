//! The adversarial suite (DESIGN §8): what a compromised backup host, a
//! hostile bucket or a race can try, and the proof that each attempt ends in
//! a clear error or a clean skip — never wrong bytes, a command run on the
//! restore host, a lost backup, or a success exit.

mod engine;
mod hygiene;
mod objects;
mod races;
