//! The sbm processes of a run: one `sbm serve --no-worker` for the API and several `sbm worker`
//! processes, started from the release binary, killed with SIGKILL, paused with SIGSTOP and
//! restarted. Each process's log goes to a file, so that the run can count log lines afterwards.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What every sbm process of the run is started with.
pub struct Settings {
    pub database_url: String,
    pub fakes: String,
    pub logs: PathBuf,
    pub lease_secs: u64,
    pub rate_per_worker: u32,
}

fn command(s: &Settings, log_name: &str) -> Command {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(s.logs.join(log_name))
        .expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sbm"));
    command
        .env("SECRET_KEY", "chaos-campaign-secret-key")
        .env("DATABASE_URL", &s.database_url)
        .env("IDENTITY_STORE_URL", format!("{}/identity/api/v1", s.fakes))
        .env("MESSAGE_SENDER_URL", format!("{}/sender/api/v1", s.fakes))
        .env("STAGE_BASED_MESSAGING_URL", "http://127.0.0.1:8000")
        .env("SBM_INSTANCE_NAME", "chaos")
        .env("SBM_DB_MAX_CONNECTIONS", "8")
        .env("SBM_DB_ACQUIRE_TIMEOUT", "3")
        .env("SBM_WORKER_CONCURRENCY", "64")
        .env("SBM_WORKER_POLL_MS", "50")
        .env("SBM_JOB_LEASE_SECS", s.lease_secs.to_string())
        // Kills count as attempts: enough that no send runs out of them in a campaign.
        .env("SBM_JOB_MAX_ATTEMPTS", "60")
        .env("SBM_JOB_RETRY_BASE_MS", "100")
        .env("SBM_JOB_RETRY_MAX_MS", "1000")
        .env("SBM_SEND_RATE_LIMIT", s.rate_per_worker.to_string())
        .env("SBM_PEER_TIMEOUT_MS", "1000")
        .env("SBM_DELIVERY_TIMEOUT_MS", "1000")
        .env(
            "SBM_DELIVERY_RETRY_SCHEDULE",
            "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
        )
        .env("SBM_DELIVERY_RETRY_AFTER_MAX_SECS", "2")
        .env("SBM_CALLBACK_ALLOWED_NETWORKS", "127.0.0.0/8")
        // The run fires its one tick itself.
        .env("SBM_TICK_INTERVAL_SECS", "86400")
        .env("RUST_LOG", "warn,sbm=info")
        .env("SBM_LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    command
}

pub fn start_api(s: &Settings, port: u16) -> Child {
    command(s, "api.log")
        .args(["serve", "--no-migrate", "--no-worker"])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .spawn()
        .expect("sbm serve starts")
}

pub fn start_worker(s: &Settings, slot: usize) -> Child {
    command(s, &format!("worker-{slot}.log"))
        .args(["worker", "--no-migrate"])
        .spawn()
        .expect("sbm worker starts")
}

/// SIGKILL, and reap.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -{name} failed");
}

/// Lines of the run's logs that contain `needle`.
pub fn count_log_lines(dir: &Path, needle: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|text| text.lines().filter(|l| l.contains(needle)).count())
        .sum()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
