//! The `sbm import django` command line.

use std::path::PathBuf;

use super::Options;
use crate::http::links::public_origin;
use crate::store::Db;

#[derive(clap::Subcommand, Debug)]
pub enum ImportCommand {
    /// Import (or bring up to date) everything from a Django seed-stage-based-messaging
    /// database: content, subscriptions, users, tokens and failed sends (docs/import.md).
    Django(DjangoArgs),
}

#[derive(clap::Args, Debug)]
pub struct DjangoArgs {
    /// The Django database, postgres://user:password@host/name. Only read, never written.
    #[arg(long = "from")]
    pub from: String,
    /// The Django MEDIA_ROOT: binary content files are copied from here.
    #[arg(long = "media-root")]
    pub media_root: Option<PathBuf>,
    /// sbm's media root, where the files are copied to.
    #[arg(
        long = "sbm-media-root",
        env = "SBM_MEDIA_ROOT",
        default_value = "media"
    )]
    pub sbm_media_root: PathBuf,
    /// Read and check everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop at a binary content file that cannot be copied (by default it is reported).
    #[arg(long)]
    pub strict: bool,
    /// Write lifecycle events for the imported rows (by default none: nothing happened to
    /// them, they only moved).
    #[arg(long)]
    pub emit_events: bool,
    /// Public base URL of sbm, for the URLs inside events.
    #[arg(
        long = "public-url",
        env = "STAGE_BASED_MESSAGING_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub public_url: String,
}

pub async fn run(db: &Db, command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Django(args) = command;
    let options = Options {
        from: args.from,
        media_root: args.media_root,
        target_media_root: args.sbm_media_root,
        dry_run: args.dry_run,
        strict: args.strict,
        emit_events: args.emit_events.then(|| public_origin(&args.public_url)),
        quiet: false,
    };
    let report = super::run(db, &options).await?;
    println!("source: {}\n", report.schema_version);
    print!("{}", report.render());
    if !report.verified() {
        anyhow::bail!("sbm does not match the source (see MISMATCH above): nothing was written");
    }
    if options.dry_run {
        println!("\ndry run: nothing was written");
    } else {
        println!("\nimported and verified");
    }
    Ok(())
}
