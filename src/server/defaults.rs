//! What `serve` uses when neither a flag, its `SCOPEGATE_*` variable nor the config file's
//! `server:` section sets a value. `--help` states each (a test keeps them in step).

use std::net::SocketAddr;
use std::time::Duration;

/// Webhook listen address.
pub const LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8443);
/// Admin listen address.
pub const ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);
/// Largest accepted request body: kube-apiserver's reviews are a few KiB; 200 groups ~10 KiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Time allowed for a request's headers and body, and the keep-alive idle limit.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for a new connection's TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Open webhook connections at most.
pub const MAX_CONNECTIONS: usize = 4096;
/// Safety-net re-read of policy and TLS files.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(60);
/// How long a policy file must have been still before a reload reads it.
pub const POLICY_SETTLE: Duration = Duration::from_secs(2);
/// Decision cache entries: off (kube-apiserver caches decisions itself).
pub const DECISION_CACHE_SIZE: u64 = 0;
/// Decision cache budget in bytes.
pub const DECISION_CACHE_MAX_BYTES: u64 = 64 << 20;
/// Decision cache entry lifetime.
pub const DECISION_CACHE_TTL: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: super::super::ServeArgs,
    }

    /// The help text of `flag`: from its line to the next flag's.
    fn help_of(help: &str, flag: &str) -> String {
        let start = help
            .find(&format!("--{flag} "))
            .unwrap_or_else(|| panic!("--{flag} in help"));
        let rest = &help[start + 2..];
        let end = rest.find("\n  -").map_or(rest.len(), |i| i);
        rest[..end].split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn help_states_every_default() {
        let help = Serve::command().render_long_help().to_string();
        let mib = |bytes: u64| format!("{} MiB", bytes >> 20);
        for (flag, value) in [
            ("listen", LISTEN.to_string()),
            ("admin-listen", ADMIN_LISTEN.to_string()),
            ("max-body-bytes", MAX_BODY_BYTES.to_string()),
            ("read-timeout-seconds", READ_TIMEOUT.as_secs().to_string()),
            (
                "tls-handshake-timeout-seconds",
                TLS_HANDSHAKE_TIMEOUT.as_secs().to_string(),
            ),
            ("max-connections", MAX_CONNECTIONS.to_string()),
            (
                "reload-interval-seconds",
                RELOAD_INTERVAL.as_secs().to_string(),
            ),
            ("policy-settle-ms", POLICY_SETTLE.as_millis().to_string()),
            ("decision-cache-size", DECISION_CACHE_SIZE.to_string()),
            ("decision-cache-max-bytes", mib(DECISION_CACHE_MAX_BYTES)),
            (
                "decision-cache-ttl-seconds",
                DECISION_CACHE_TTL.as_secs().to_string(),
            ),
        ] {
            let text = help_of(&help, flag);
            assert!(
                text.contains(&format!("[default: {value}]")),
                "--{flag}: `[default: {value}]` not in `{text}`"
            );
        }
    }
}
