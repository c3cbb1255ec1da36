//! The `shedu` binary: `shedu serve` runs the platform; `shedu ca …` and `shedu cert …` drive a running
//! server over its HTTPS API, reached through the flags or a saved context (`shedu login`, `shedu
//! context`). This file only parses the command line and dispatches.

mod audit;
mod bootstrap;
mod client;
mod config;
mod keys;
mod serve;
mod unseal;

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
        command: Box<keys::KeysCommand>,
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
    /// Log in to a server and save the session in a context (`~/.config/shedu`).
    Login(client::LoginArgs),
    /// Forget the current context's session or token.
    Logout(client::LogoutArgs),
    /// Manage saved contexts (servers and how to reach them), like kubectl's.
    Context {
        #[command(subcommand)]
        command: client::ContextCommand,
    },
    /// Manage registration authorities (who may enrol devices, and how).
    Ra {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::RaCommand,
    },
    /// Manage the device registry (and import devices from CSV).
    Device {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::DeviceCommand,
    },
    /// Manage device groups (saved filters with live counts).
    Group {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::GroupCommand,
    },
    /// Read the event outbox.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Manage event subscriptions (webhooks, e-mail).
    Subscription {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::SubscriptionCommand,
    },
    /// Inspect and retry webhook and e-mail deliveries.
    Delivery {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::DeliveryCommand,
    },
    /// Manage local users (admins), or change your own password.
    User {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::UserCommand,
    },
    /// Manage API keys.
    ApiKey {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::ApiKeyCommand,
    },
    /// ACME: External Account Binding keys of an RA's directory.
    Acme {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::AcmeCommand,
    },
    /// The connector (Kyma-style pairing): one-time tokens, revocation by fingerprint.
    Connector {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(flatten)]
        connector: client::ConnectorArgs,
    },
    /// The KMIP key manager: grants on objects (the objects themselves are used over KMIP).
    Kms {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::KmsCommand,
    },
    /// Cloud connectors (AWS IoT Core): create, list, show, update, delete, and their sync state.
    Cloud {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::CloudCommand,
    },
    /// Agentless rotation's inventory: add, list, show, delete, scan and rotate assets.
    Asset {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::AssetCommand,
    },
    /// Agentless rotation's runs (and the queue), routes and executors.
    Rotation {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::RotationCommand,
    },
    /// Show the server's version, database, event sinks with their lag, and counts by status.
    Status {
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// The secret store: token files for services without the token socket (EdgeX's fallback).
    #[command(visible_alias = "secret")]
    Secrets {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::SecretsCommand,
    },
    /// Make, reuse or renew the PKI of an edge box's services (a root or imported CA, an intermediate, a
    /// server certificate per service), offline, into files the services read.
    BootstrapPki(bootstrap::BootstrapArgs),
    /// Print a shell completion script: `source <(shedu completion bash)`.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `shedu events …`
#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// List events (CloudEvents) from the outbox, oldest first.
    List(Box<EventsList>),
    /// Follow the live event stream (Server-Sent Events) until Ctrl-C, reconnecting without a gap.
    Tail(Box<EventsTail>),
}

/// `events tail`: where the server is, and the filter.
#[derive(Debug, clap::Args)]
struct EventsTail {
    #[command(flatten)]
    client: client::ClientArgs,
    #[command(flatten)]
    options: client::EventsTailArgs,
}

/// `events list`: where the server is, and the filters.
#[derive(Debug, clap::Args)]
struct EventsList {
    #[command(flatten)]
    client: client::ClientArgs,
    #[command(flatten)]
    filters: client::EventsListArgs,
}

/// Exit codes: 0 success, 1 any other failure, 2 a usage error (clap's), 3 a request the server refused
/// (4xx), 4 a server error (5xx). `audit verify` has its own (see `audit.rs`).
const EXIT_REFUSED: u8 = 3;
const EXIT_SERVER_ERROR: u8 = 4;

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
            Command::Keys { command } => keys::run(*command).await,
            Command::Audit { command } => audit::run(command).await,
            Command::Ra { client, command } => client::run_ra(client, command).await,
            Command::Device { client, command } => client::run_device(client, command).await,
            Command::Group { client, command } => client::run_group(client, command).await,
            Command::Secrets { client, command } => client::run_secrets(client, command).await,
            Command::Events {
                command: EventsCommand::List(list),
            } => client::run_events_list(list.client, list.filters).await,
            Command::Events {
                command: EventsCommand::Tail(tail),
            } => client::run_events_tail(tail.client, tail.options).await,
            Command::Subscription { client, command } => {
                client::run_subscription(client, command).await
            }
            Command::Delivery { client, command } => client::run_delivery(client, command).await,
            Command::User { client, command } => client::run_user(client, command).await,
            Command::ApiKey { client, command } => client::run_api_key(client, command).await,
            Command::Acme { client, command } => client::run_acme(client, command).await,
            Command::Connector { client, connector } => {
                client::run_connector(client, connector).await
            }
            Command::Kms { client, command } => client::run_kms(client, command).await,
            Command::Cloud { client, command } => client::run_cloud(client, command).await,
            Command::Asset { client, command } => client::run_asset(client, command).await,
            Command::Rotation { client, command } => client::run_rotation(client, command).await,
            Command::BootstrapPki(args) => bootstrap::run(args),
            Command::Status { client } => client::run_status(client).await,
            Command::Login(args) => client::run_login(args).await,
            Command::Logout(args) => client::run_logout(args).await,
            Command::Context { command } => client::run_context(command).await,
            Command::Completion { shell } => {
                use clap::CommandFactory;
                let mut cmd = Cli::command();
                clap_complete::generate(shell, &mut cmd, "shedu", &mut std::io::stdout());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // `audit verify` tells "tampered with" (1) from "could not check" (2).
            if e.downcast_ref::<audit::CannotVerify>().is_some() {
                std::process::ExitCode::from(2)
            } else if let Some(http) = e.downcast_ref::<client::HttpError>() {
                std::process::ExitCode::from(if http.status >= 500 {
                    EXIT_SERVER_ERROR
                } else {
                    EXIT_REFUSED
                })
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
