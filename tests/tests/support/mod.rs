//! Helpers shared by the test files: running the binaries under test.

#![allow(dead_code, unreachable_pub)]

pub mod daemon;
pub mod network;
pub mod raw;

use std::process::{Command, Output};

/// Runs `godwitd` with `args`.
pub fn godwitd(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_test-godwitd"), args)
}

/// Runs `godwit` with `args`.
pub fn godwit(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_test-godwit"), args)
}

/// Runs `godwit` with `args`, which must succeed; returns its standard output.
pub fn godwit_ok(args: &[&str]) -> String {
    let o = godwit(args);
    assert!(o.status.success(), "godwit {args:?} failed: {}", stderr(&o));
    stdout(&o)
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().unwrap_or_else(|e| panic!("cannot start {bin}: {e}"))
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
