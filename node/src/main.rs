//! `godwitd`: a thin shell over [`godwit_node::cli`].

fn main() -> std::process::ExitCode {
    match godwit_node::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("godwitd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
