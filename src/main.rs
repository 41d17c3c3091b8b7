//! The `latmove` binary: parses the command line and hands over to the
//! library. Errors print their whole context chain on one line and exit 2.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = latmove::cli::Cli::parse();
    match latmove::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed stdout (e.g. `| head`) is not an error.
            let broken_pipe = err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("latmove: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
