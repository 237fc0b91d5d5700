//! `godwit`: a thin shell over [`godwit_admin`].

fn main() -> std::process::ExitCode {
    match godwit_admin::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("godwit: {e:#}");
            std::process::ExitCode::from(godwit_admin::exit_code(&e))
        }
    }
}
