use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = sbm::cli::Cli::parse();
    let _telemetry = sbm::telemetry::init();
    sbm::cli::run(cli).await
}
