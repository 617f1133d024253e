//! `sbm integration-group`: the integration groups' writes, through `integrations::manage` as
//! the API does, audited as the command line.

use clap::Subcommand;
use serde_json::{json, Value};

use crate::audit::Actor;
use crate::domain::Error;
use crate::integrations::manage;
use crate::secrets::Keyring;
use crate::store::{integrations as sql, Db, Slice};

#[derive(Subcommand, Debug)]
pub enum IntegrationGroupCommand {
    /// Create a group, with the rules of POST /api/v1/integration-groups/.
    Create(Box<IntegrationGroupArgs>),
    /// List the groups.
    List,
    /// Delete a group with its messages and errors.
    Delete { name: String },
    /// Issue a token for the group's poll API only, and print it. It is shown only once.
    Token { name: String },
}

#[derive(clap::Args, Debug)]
pub struct IntegrationGroupArgs {
    #[arg(long)]
    pub name: String,
    /// `poll` or `send`.
    #[arg(long)]
    pub method: String,
    #[arg(long)]
    pub title: String,
    #[arg(long)]
    pub description: Option<String>,
    /// An event type or prefix that feeds the group (`subscription.*`); repeat for more.
    #[arg(long = "event-type")]
    pub event_types: Vec<String>,
    #[arg(long)]
    pub lease_seconds: Option<i64>,
    #[arg(long)]
    pub target_url: Option<String>,
    /// The whole value of the Authorization header sent with each push.
    #[arg(long)]
    pub auth_header: Option<String>,
    /// `json`, `ndjson` or `csv`.
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long)]
    pub minute: Option<String>,
    #[arg(long)]
    pub hour: Option<String>,
    #[arg(long)]
    pub day_of_week: Option<String>,
    #[arg(long)]
    pub day_of_month: Option<String>,
    #[arg(long)]
    pub month_of_year: Option<String>,
    #[arg(long)]
    pub max_batch_size: Option<i64>,
    #[arg(long)]
    pub skip_empty: Option<bool>,
    /// The instance that may push (default: this instance's name).
    #[arg(long, env = "SBM_INSTANCE_NAME", default_value_t = crate::config::host_name())]
    pub instance: String,
}

/// A domain error as a command-line error: field errors as their JSON.
fn domain_error(err: Error) -> anyhow::Error {
    match err {
        Error::Invalid(errors) => anyhow::anyhow!("{}", json!(errors)),
        Error::NotFound => anyhow::anyhow!("no such integration group"),
        other => anyhow::anyhow!("{other}"),
    }
}

pub(super) async fn integration_group_command(
    db: &Db,
    keyring: &Keyring,
    command: IntegrationGroupCommand,
) -> anyhow::Result<()> {
    match command {
        IntegrationGroupCommand::Create(args) => create(db, keyring, &args).await,
        IntegrationGroupCommand::List => list(db).await,
        IntegrationGroupCommand::Delete { name } => delete(db, &name).await,
        IntegrationGroupCommand::Token { name } => token(db, &name).await,
    }
}

/// The create arguments as the API's create body, so that both read it with the same rules.
fn create_body(args: &IntegrationGroupArgs) -> Value {
    let mut body = json!({
        "name": args.name,
        "method": args.method,
        "title": args.title,
        "event_types": args.event_types,
    });
    let text = |value: &Option<String>| value.clone().map(Value::from);
    let optional = [
        ("description", text(&args.description)),
        ("lease_seconds", args.lease_seconds.map(Into::into)),
        ("target_url", text(&args.target_url)),
        ("auth_header", text(&args.auth_header)),
        ("format", text(&args.format)),
        ("minute", text(&args.minute)),
        ("hour", text(&args.hour)),
        ("day_of_week", text(&args.day_of_week)),
        ("day_of_month", text(&args.day_of_month)),
        ("month_of_year", text(&args.month_of_year)),
        ("max_batch_size", args.max_batch_size.map(Into::into)),
        ("skip_empty", args.skip_empty.map(Into::into)),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            body[key] = value;
        }
    }
    body
}

async fn create(db: &Db, keyring: &Keyring, args: &IntegrationGroupArgs) -> anyhow::Result<()> {
    let body = create_body(args);
    let (group, topics) = manage::read_new(&args.instance, &body).map_err(domain_error)?;
    let mut tx = db.begin().await?;
    manage::create(&mut tx, keyring, &Actor::cli(), &group, &topics)
        .await
        .map_err(domain_error)?;
    tx.commit().await?;
    println!(
        "created integration group {} ({})",
        group.name, group.method
    );
    Ok(())
}

async fn list(db: &Db) -> anyhow::Result<()> {
    let mut conn = db.acquire().await?;
    let every = Slice {
        limit: i64::MAX,
        offset: 0,
    };
    let page = sql::list_groups(conn.conn(), every).await?;
    for group in page.rows {
        println!(
            "{}\t{}\t{}\t{}",
            group.name,
            group.method,
            group.title,
            group.target_url.unwrap_or_default()
        );
    }
    Ok(())
}

async fn delete(db: &Db, name: &str) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    match manage::delete(&mut tx, &Actor::cli(), name).await {
        Ok(()) => {}
        Err(Error::NotFound) => anyhow::bail!("no such integration group: {name}"),
        Err(err) => return Err(err.into()),
    }
    tx.commit().await?;
    println!("deleted integration group {name}");
    Ok(())
}

async fn token(db: &Db, name: &str) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    let token = manage::issue_token(&mut tx, &Actor::cli(), name)
        .await
        .map_err(domain_error)?;
    tx.commit().await?;
    println!("{token}");
    Ok(())
}
