use clap::Parser;

fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let cli = sbm::cli::Cli::parse();
            let _telemetry = sbm::telemetry::init();
            sbm::cli::run(cli).await
        })
}

/// glibc's malloc gives threads their own arenas, up to eight per core, and memory freed in one
/// arena is not reused by another. sbm's threads (Tokio's, and one per SQLite connection) each
/// allocate and free rows and request bodies, so the process held memory it no longer used: a
/// 100,000-send SQLite tick with a callback peaked at 151 MiB, and at 115 MiB with two arenas, at
/// the same rate (docs/benchmarks.md). Set before the runtime starts its threads; an operator's
/// `MALLOC_ARENA_MAX` wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable of the allocator; no thread has started yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
