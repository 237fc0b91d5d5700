//! `godwitd` built inside the tests crate, so that tests can find it through
//! `CARGO_BIN_EXE_test-godwitd` (Cargo only exposes a package's own binaries to its tests). It
//! runs exactly the same code as the real `godwitd`: both are thin shells over `godwit_node::cli`.

fn main() -> std::process::ExitCode {
    match godwit_node::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("godwitd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
