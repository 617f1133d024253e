//! `sbm healthcheck`: asks a running `sbm serve` for `/healthz` and fails unless it answers 200.
//! The container image has no shell and no curl, so its HEALTHCHECK calls the binary itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct HealthcheckArgs {
    /// URL to ask. Default: /healthz on the loopback address at the port of SBM_BIND.
    // Its own id: `url` is the global --database-url's, whose DATABASE_URL would fill it.
    #[arg(long = "url", id = "healthcheck_url")]
    pub url: Option<String>,
    /// [HTTP] The address `sbm serve` listens on; gives the default URL.
    #[arg(long, env = "SBM_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    /// Seconds to wait for the answer.
    #[arg(long = "timeout-secs", default_value_t = 5)]
    pub timeout_secs: u64,
}

/// `/healthz` of a server bound to `bind`, reached from the same machine: a server bound to
/// every address (0.0.0.0 or ::) is asked on loopback.
pub fn default_url(bind: SocketAddr) -> String {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/healthz", SocketAddr::new(ip, bind.port()))
}

/// Asks once; an error (the exit status of the command) unless the answer is 200.
pub async fn run(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let url = args.url.clone().unwrap_or_else(|| default_url(args.bind));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs.max(1)))
        .build()?;
    let response = client.get(&url).send().await?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status != reqwest::StatusCode::OK {
        anyhow::bail!("{url} answered {status}: {body}");
    }
    println!("{url}: {body}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::default_url;

    #[test]
    fn a_server_bound_to_every_address_is_asked_on_loopback() {
        let url = |bind: &str| default_url(bind.parse().unwrap());
        assert_eq!(url("0.0.0.0:8000"), "http://127.0.0.1:8000/healthz");
        assert_eq!(url("[::]:9000"), "http://[::1]:9000/healthz");
        assert_eq!(url("10.1.2.3:80"), "http://10.1.2.3:80/healthz");
    }
}
