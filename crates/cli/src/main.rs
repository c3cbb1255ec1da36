//! The `shedu` binary: `shedu serve` runs the platform; `shedu ca …` and `shedu cert …` drive a running
//! server over its HTTPS API. This file only parses the command line and dispatches.

mod audit;
mod client;
mod config;
mod keys;
mod serve;

use clap::{Parser, Subcommand};

/// shedu: certificate lifecycle platform for industrial IoT.
#[derive(Debug, Parser)]
#[command(name = "shedu", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform (HTTPS API + plain-HTTP listener) on SQLite or PostgreSQL.
    Serve(Box<config::ServeArgs>),
    /// Manage certificate authorities on a running server.
    Ca {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::CaCommand,
    },
    /// Manage the keys at rest (run with the server stopped).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Issue, inspect and revoke certificates on a running server.
    Cert {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::CertCommand,
    },
    /// Check the audit log's hash chain (reads the database directly).
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
}

fn main() -> std::process::ExitCode {
    // One crypto provider for the whole process, installed before anything builds a TLS config.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Ca { client, command } => client::run_ca(client, command).await,
            Command::Cert { client, command } => client::run_cert(client, command).await,
            Command::Keys { command } => keys::run(command).await,
            Command::Audit { command } => audit::run(command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // `audit verify` tells "tampered with" (1) from "could not check" (2).
            if e.downcast_ref::<audit::CannotVerify>().is_some() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
