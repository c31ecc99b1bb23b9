//! `scopegate`: parse the command line and dispatch.

use clap::Parser;
use scopegate::cli::{self, Cli, Command};
use std::process::ExitCode;

/// mimalloc: a decision allocates a few small objects per request on whichever worker
/// thread runs it; glibc's malloc spends more time on those than the decision itself
/// (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => cli::run_check(&args).map(cli::exit_code),
        Command::Explain(args) => cli::run_explain(&args).map(cli::exit_code),
        Command::Validate(args) => cli::run_validate(&args).map(|()| 0),
        Command::Certs(args) => scopegate::certs::write_all(&scopegate::certs::CertsRequest {
            dir: &args.out_dir,
            hosts: &args.hosts,
            client_name: &args.client_name,
            ca: args.ca_cert.as_deref().zip(args.ca_key.as_deref()),
            force: args.force,
        })
        .map(|names| {
            println!("wrote {} to {}", names.join(", "), args.out_dir.display());
            0
        })
        .map_err(|e| cli::UsageError(format!("{e:#}"))),
        Command::Serve(args) => serve(*args),
        Command::Sync(args) => sync(*args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

fn serve(args: scopegate::server::ServeArgs) -> Result<u8, cli::UsageError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| cli::UsageError(format!("cannot start the runtime: {e}")))?;
    runtime
        .block_on(scopegate::server::run(args))
        .map(|()| 0)
        .map_err(|e| cli::UsageError(format!("{e:#}")))
}

fn sync(args: scopegate::sync::SyncArgs) -> Result<u8, cli::UsageError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| cli::UsageError(format!("cannot start the runtime: {e}")))?;
    runtime
        .block_on(scopegate::sync::run(args))
        .map_err(cli::UsageError)
}
