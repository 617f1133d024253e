//! The `sbm` command line: serve, migrate, and user and token administration.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::{self, App};
use crate::auth;
use crate::config::{
    DatabaseConfig, EventsConfig, MetricsConfig, PeersConfig, RetentionConfig, ServeConfig,
    WorkerConfig,
};
use crate::store::{users, Db};

mod integration_groups;

use integration_groups::integration_group_command;
pub use integration_groups::{IntegrationGroupArgs, IntegrationGroupCommand};

#[derive(Parser, Debug)]
#[command(
    name = "sbm",
    version,
    about = "Seed Stage-Based Messaging Store",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub secrets: crate::secrets::SecretsConfig,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API. With no configuration: an SQLite file sbm.db in the working directory.
    Serve(ServeConfig),
    /// Run only the background jobs (sends, Scheduler calls), e.g. on another machine. Any
    /// number of workers may share one PostgreSQL database.
    Worker(WorkerCommand),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage integration groups (docs/integrations.md).
    #[command(subcommand)]
    IntegrationGroup(IntegrationGroupCommand),
    /// Ask a running `sbm serve` for /healthz; exit status 0 only if it answers 200.
    Healthcheck(crate::healthcheck::HealthcheckArgs),
    /// Import a running Django seed-stage-based-messaging (docs/import.md).
    #[command(subcommand)]
    Import(crate::importer::command::ImportCommand),
    /// Manage the encryption of stored secrets (docs/security.md).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Delete the events, deliveries, integration messages and audit entries past their
    /// retention now (one pass, as the workers run every SBM_PRUNE_INTERVAL_SECS), and print
    /// how many rows of each went.
    Prune(RetentionConfig),
}

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Re-encrypt every stored callback secret and integration auth header with SECRET_KEY
    /// (those sealed with a SECRET_KEY_FALLBACKS key, and plaintext from before encryption).
    Rotate,
}

#[derive(clap::Args, Debug)]
pub struct WorkerCommand {
    #[command(flatten)]
    pub peers: PeersConfig,
    #[command(flatten)]
    pub worker: WorkerConfig,
    #[command(flatten)]
    pub metrics: MetricsConfig,
    #[command(flatten)]
    pub events: EventsConfig,
    /// [HTTP] Public base URL of the sbm API (for POST-back and media URLs given to peers).
    #[arg(
        long = "public-url",
        env = "STAGE_BASED_MESSAGING_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub public_url: String,
    /// [Database] Do not apply pending migrations at start.
    #[arg(long = "no-migrate", env = "SBM_NO_MIGRATE", action = clap::ArgAction::SetTrue)]
    pub no_migrate: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user (or, for an existing email, only grant what is asked).
    Create {
        #[arg(long)]
        email: String,
        /// Allow the user to issue tokens through POST /api/v1/user/token/.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List,
    /// Set the password a user signs in to the admin UI (/admin/) with. The password is read
    /// from the first line of standard input (prompted for on a terminal).
    SetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue a new token for a user (created if missing) and print it. It is shown only once.
    Create {
        #[arg(long)]
        email: String,
        /// Make the user an admin if it is not one already.
        #[arg(long)]
        admin: bool,
    },
    /// List tokens by prefix (the tokens themselves are not stored).
    List,
    /// Revoke a token, given in full or by the 8-character prefix `token list` shows.
    Revoke { token_or_prefix: String },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(mut config) => {
            config.events.secrets = cli.secrets.resolved(cli.database.url())?;
            serve(&cli.database, &config).await
        }
        Command::Worker(mut command) => {
            command.events.secrets = cli.secrets.resolved(cli.database.url())?;
            worker(&cli.database, &command).await
        }
        Command::Migrate => {
            let db = connect(&cli.database).await?;
            db.migrate().await?;
            println!("migrations applied to {}", redact(cli.database.url()));
            Ok(())
        }
        Command::User(command) => {
            let db = migrated(&cli.database).await?;
            user_command(&db, command).await
        }
        Command::Token(command) => {
            let db = migrated(&cli.database).await?;
            token_command(&db, command).await
        }
        Command::IntegrationGroup(command) => {
            let keyring = cli.secrets.resolved(cli.database.url())?.keyring()?;
            let db = migrated(&cli.database).await?;
            integration_group_command(&db, &keyring, command).await
        }
        Command::Secrets(SecretsCommand::Rotate) => {
            let keyring = cli.secrets.resolved(cli.database.url())?.keyring()?;
            let db = migrated(&cli.database).await?;
            let done = rotate_patiently(&db, &keyring).await?;
            println!(
                "re-encrypted {} secret(s); {} already current; {} unreadable",
                done.resealed, done.current, done.unreadable
            );
            if done.unreadable > 0 {
                anyhow::bail!("{} stored secret(s) could not be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS", done.unreadable);
            }
            Ok(())
        }
        Command::Import(command) => {
            let db = migrated(&cli.database).await?;
            crate::importer::command::run(&db, command).await
        }
        Command::Healthcheck(args) => crate::healthcheck::run(&args).await,
        Command::Prune(retention) => {
            let db = migrated(&cli.database).await?;
            prune(&db, &retention).await
        }
    }
}

/// `sbm prune`: one pass, and what it deleted per table.
async fn prune(db: &Db, config: &RetentionConfig) -> anyhow::Result<()> {
    let policy = crate::retention::Policy::from_config(config);
    let pruned = crate::retention::prune(db, &policy, crate::store::now()).await?;
    let lines = [
        ("event", pruned.events, policy.events),
        ("delivery", pruned.deliveries, policy.deliveries),
        (
            "integration_message",
            pruned.integration_messages,
            policy.integration_messages,
        ),
        ("audit_log", pruned.audit_log, policy.audit_log),
    ];
    for (table, count, keep) in lines {
        match keep {
            Some(keep) => println!(
                "{table}: {count} deleted (older than {} days)",
                keep.num_days()
            ),
            None => println!("{table}: kept forever"),
        }
    }
    Ok(())
}

/// `secrets rotate` on a live database: a busy one (SQLite's single write lock held by the
/// running service) is waited out a few times rather than failing the operator's command.
async fn rotate_patiently(
    db: &Db,
    keyring: &crate::secrets::Keyring,
) -> anyhow::Result<crate::keys::Rotated> {
    let mut tries = 0;
    loop {
        match crate::keys::rotate(db, keyring, &crate::audit::Actor::cli()).await {
            Err(crate::store::Error::Unavailable(err)) if tries < 5 => {
                tries += 1;
                eprintln!("the database is busy ({err}); trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => return Ok(other?),
        }
    }
}

async fn connect(database: &DatabaseConfig) -> anyhow::Result<Db> {
    Db::connect(database.url(), &database.pool()).await
}

async fn migrated(database: &DatabaseConfig) -> anyhow::Result<Db> {
    let db = connect(database).await?;
    db.migrate().await?;
    Ok(db)
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

async fn serve(database: &DatabaseConfig, config: &ServeConfig) -> anyhow::Result<()> {
    let app = App::build(database, config).await?;
    announce_first_admin(app.db()).await?;
    tracing::info!(address = %app.local_addr(), database = %redact(database.url()), "sbm listening");
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        app::shutdown_signal().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    app.run(shutdown).await
}

async fn worker(database: &DatabaseConfig, command: &WorkerCommand) -> anyhow::Result<()> {
    let db = connect(database).await?;
    if !command.no_migrate {
        db.migrate().await?;
    }
    let origin = crate::config::public_origin(&command.public_url);
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let ctx = app::job_context(
        db.clone(),
        &command.peers,
        &command.worker,
        &command.metrics,
        &command.events,
        origin,
        wake,
    )?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        app::shutdown_signal().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    crate::runtime::run_background(std::sync::Arc::new(ctx), shutdown).await;
    db.close().await;
    Ok(())
}

/// On a database with no users at all, creates an admin and prints its token once, so that a
/// newcomer can call the API straight away.
async fn announce_first_admin(db: &Db) -> anyhow::Result<()> {
    if let Some(issued) = auth::bootstrap_admin(db).await? {
        eprintln!(
            "\n  No users existed, so sbm created the admin user {email}.\n  Its API token (shown only this once):\n\n      {token}\n\n  Use it as:  curl -H 'Authorization: Token {token}' http://<host>/api/v1/schedule/\n  More tokens: sbm token create --email you@example.org [--admin]\n",
            email = issued.user.email,
            token = issued.token
        );
    }
    Ok(())
}

async fn user_command(db: &Db, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { email, admin } => {
            let mut tx = db.begin().await?;
            let (user, created) = auth::create_user(&mut tx, &email, admin).await?;
            let details = serde_json::json!({"email": user.email, "admin": user.is_admin, "created": created});
            cli_audit(
                &mut tx,
                "user.create",
                ("user", user.id.to_string()),
                details,
            )
            .await?;
            tx.commit().await?;
            let state = if created { "created" } else { "exists" };
            println!(
                "{state}: {} (id {}, admin: {})",
                user.email, user.id, user.is_admin
            );
        }
        UserCommand::SetPassword { email } => {
            let password = read_password()?;
            let mut tx = db.begin().await?;
            auth::password::set_password(&mut tx, &email, &password).await?;
            tx.commit().await?;
            println!("password set for {}", email.trim().to_lowercase());
        }
        UserCommand::List => {
            let mut conn = db.acquire().await?;
            for user in users::list_users(conn.conn()).await? {
                println!(
                    "{}\t{}\tadmin={}\tactive={}",
                    user.id, user.email, user.is_admin, user.is_active
                );
            }
        }
    }
    Ok(())
}

/// The first line of standard input, without its line ending; prompts on a terminal (the
/// typed characters are shown: pipe the password in where that matters).
fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if std::io::stdin().is_terminal() {
        eprint!("Password: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Records a command-line change in the audit log, in its transaction.
async fn cli_audit(
    tx: &mut crate::store::Tx,
    action: &str,
    (kind, id): (&str, String),
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let object = crate::audit::Object::new(kind, id);
    crate::audit::record(tx, &crate::audit::Actor::cli(), action, object, details).await?;
    Ok(())
}

async fn token_command(db: &Db, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { email, admin } => {
            let mut tx = db.begin().await?;
            let issued = auth::issue_token(&mut tx, &email, admin).await?;
            let prefix: String = issued.token.chars().take(8).collect();
            let details =
                serde_json::json!({"email": issued.user.email, "admin": issued.user.is_admin});
            cli_audit(&mut tx, "token.create", ("token", prefix), details).await?;
            tx.commit().await?;
            println!("{}", issued.token);
        }
        TokenCommand::List => {
            let mut conn = db.acquire().await?;
            for token in users::list_tokens(conn.conn()).await? {
                let state = match token.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".to_string(),
                };
                println!(
                    "{}…\t{}\tcreated {}\t{}",
                    token.prefix, token.email, token.created_at, state
                );
            }
        }
        TokenCommand::Revoke { token_or_prefix } => {
            let mut tx = db.begin().await?;
            let revoked = auth::revoke(&mut tx, &token_or_prefix).await?;
            let prefix: String = token_or_prefix.chars().take(8).collect();
            let details = serde_json::json!({"revoked": revoked});
            cli_audit(&mut tx, "token.revoke", ("token", prefix), details).await?;
            tx.commit().await?;
            if revoked == 0 {
                anyhow::bail!("no active token matches {token_or_prefix:?}");
            }
            println!("revoked {revoked} token(s)");
        }
    }
    Ok(())
}
