//! `scopegate`: parse the command line and dispatch.

use clap::Parser;
use scopegate::cli::{self, Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => cli::run_check(args).map(|allowed| if allowed { 0 } else { 1 }),
        Command::Explain(args) => cli::run_explain(args).map(|allowed| if allowed { 0 } else { 1 }),
        Command::Validate(args) => cli::run_validate(args).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
