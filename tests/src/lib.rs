//! # godwit-tests
//!
//! Black-box tests of the Godwit binaries and, as the node grows, multi-node tests over
//! loopback. The binaries under test are built from this crate (`test-godwitd`, `test-godwit`),
//! as thin shells over the same library entry points as the real `godwitd` and `godwit`,
//! because Cargo exposes `CARGO_BIN_EXE_*` only for a package's own binaries.
//!
//! Helpers shared by the test files live in `tests/support/`.
