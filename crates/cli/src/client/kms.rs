//! `shedu kms access …`: who may use which KMIP object (Cosmian-compatible grants under
//! `/api/v1/kms/access`). Objects are created and used over KMIP itself (`--kmip-listen`, see
//! docs/kmip.md); this is the owner's side of sharing them.

use clap::Subcommand;
use serde_json::json;

use super::ClientArgs;
use super::api::Api;
use super::output::{emit_doc, show_rows, text};

/// `shedu kms …`
#[derive(Debug, Subcommand)]
pub(crate) enum KmsCommand {
    /// Grants on KMIP objects (you act as the KMIP user of your login: the owner's name).
    Access {
        #[command(subcommand)]
        command: AccessCommand,
    },
}

/// `shedu kms access …`
#[derive(Debug, Subcommand)]
pub(crate) enum AccessCommand {
    /// Let a user run some operations on an object you own.
    Grant(GrantArgs),
    /// Take operations back.
    Revoke(GrantArgs),
    /// The grants on an object you own.
    List {
        /// The object's Unique Identifier.
        object: String,
    },
    /// The objects you own.
    Owned,
    /// The objects others granted you operations on.
    Obtained,
}

/// The object, the user and the operations of a grant or its revocation.
#[derive(Debug, clap::Args)]
pub(crate) struct GrantArgs {
    /// The object's Unique Identifier.
    #[arg(long)]
    object: String,
    /// The KMIP user (the CN of their client certificate).
    #[arg(long)]
    user: String,
    /// Operations, comma-separated: get, get_attributes, locate, activate, revoke, destroy, encrypt,
    /// decrypt, sign, signature_verify, mac.
    #[arg(long, value_delimiter = ',', required = true)]
    operations: Vec<String>,
}

/// Runs `shedu kms …`.
pub(crate) async fn run_kms(args: ClientArgs, command: KmsCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    let KmsCommand::Access { command } = command;
    let objects = [
        ("OBJECT", "object_id"),
        ("TYPE", "object_type"),
        ("STATE", "state"),
        ("OWNER", "owner_id"),
        ("OPERATIONS", "operations"),
    ];
    match command {
        AccessCommand::Grant(g) => change(&api, &args, "grant", g).await,
        AccessCommand::Revoke(g) => change(&api, &args, "revoke", g).await,
        AccessCommand::List { object } => {
            let list = api
                .get(&["api", "v1", "kms", "access", "list", &object], &[])
                .await?;
            show_rows(
                &list,
                args.output,
                args.quiet,
                "user_id",
                &[("USER", "user_id"), ("OPERATIONS", "operations")],
            )
        }
        AccessCommand::Owned => {
            let list = api
                .get(&["api", "v1", "kms", "access", "owned"], &[])
                .await?;
            show_rows(&list, args.output, args.quiet, "object_id", &objects)
        }
        AccessCommand::Obtained => {
            let list = api
                .get(&["api", "v1", "kms", "access", "obtained"], &[])
                .await?;
            show_rows(&list, args.output, args.quiet, "object_id", &objects)
        }
    }
}

async fn change(api: &Api, args: &ClientArgs, verb: &str, g: GrantArgs) -> anyhow::Result<()> {
    let body =
        json!({"unique_identifier": g.object, "user_id": g.user, "operation_types": g.operations});
    let answer = api
        .post(&["api", "v1", "kms", "access", verb], &body)
        .await?;
    if args.output.is_document() {
        return emit_doc(args.output, &answer);
    }
    if !args.quiet {
        eprintln!("{}", text(&answer, "success"));
    }
    Ok(())
}
