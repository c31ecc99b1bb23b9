//! Warnings about how `serve` is exposed: settings that work but that an operator should have
//! chosen on purpose.

use super::ServerSettings;
use crate::policy::IndexOptions;

/// Why the kubeconfig `--print-kubeconfig` writes will not reach the server: a wildcard
/// listen address (`0.0.0.0`, `::`) is where it listens, not an address to call.
pub fn kubeconfig_warning(settings: &ServerSettings) -> Option<String> {
    (settings.advertise_url.is_none() && settings.listen.ip().is_unspecified()).then(|| {
        format!(
            "the listen address `{}` is a wildcard, not an address kube-apiserver can call: \
             give --advertise-url with the URL it reaches scopegate at \
             (e.g. https://scopegate.example:{}/authorize)",
            settings.listen,
            settings.listen.port()
        )
    })
}

/// What `serve` warns about at start: no mutual TLS, plain HTTP beyond loopback, no cluster
/// resource id.
pub fn at_start(settings: &ServerSettings, options: &IndexOptions) -> Vec<String> {
    let mut warnings = Vec::new();
    match &settings.tls {
        Some(tls) if tls.client_cas.is_empty() => warnings.push(
            "serving without mutual TLS (no --client-ca-file): any client that reaches the \
             webhook can ask it for decisions"
                .to_string(),
        ),
        Some(_) => {}
        None if !settings.listen.ip().is_loopback() => warnings.push(format!(
            "serving plain HTTP on `{}`, beyond loopback: requests and decisions cross the \
             network unencrypted and any client can ask; use TLS with --client-ca-file",
            settings.listen
        )),
        None => {}
    }
    if options.cluster_resource_id.is_none() {
        warnings.push(
            "no --cluster-resource-id: Azure role and deny assignments apply to no cluster, \
             so only Kubernetes RBAC decides"
                .to_string(),
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServeArgs;
    use clap::Parser;

    fn settings(args: &[&str]) -> ServerSettings {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let cli =
            Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).unwrap();
        cli.serve.settings(&serde_json::Value::Null).unwrap()
    }

    const TLS: [&str; 4] = [
        "--tls-cert-file",
        "s.crt",
        "--tls-private-key-file",
        "s.key",
    ];

    #[test]
    fn a_wildcard_listen_address_needs_an_advertised_url() {
        for listen in ["0.0.0.0:8443", "[::]:8443"] {
            let s = settings(&[&TLS[..], &["--listen", listen]].concat());
            let warning = kubeconfig_warning(&s).unwrap_or_default();
            assert!(warning.contains("--advertise-url"), "{listen}: {warning}");
            assert!(warning.contains(listen), "{listen}: {warning}");
            let advertised = settings(
                &[
                    &TLS[..],
                    &[
                        "--listen",
                        listen,
                        "--advertise-url",
                        "https://sg:8443/authorize",
                    ],
                ]
                .concat(),
            );
            assert_eq!(kubeconfig_warning(&advertised), None);
        }
        let s = settings(&[&TLS[..], &["--listen", "10.0.0.5:8443"]].concat());
        assert_eq!(kubeconfig_warning(&s), None);
    }

    #[test]
    fn start_warns_about_exposure_chosen_by_default() {
        let cluster = IndexOptions {
            cluster_resource_id: crate::model::Scope::parse(
                "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/resourceGroups/rg/providers/\
                 Microsoft.ContainerService/managedClusters/aks",
            )
            .ok(),
            ..IndexOptions::default()
        };
        assert!(cluster.cluster_resource_id.is_some());
        let warned = |args: &[&str], options: &IndexOptions| at_start(&settings(args), options);
        let mtls = [&TLS[..], &["--client-ca-file", "ca.crt"]].concat();
        assert_eq!(warned(&mtls, &cluster), Vec::<String>::new());
        let one_way = warned(&TLS, &cluster);
        assert!(
            one_way.len() == 1 && one_way[0].contains("without mutual TLS"),
            "{one_way:?}"
        );
        assert_eq!(warned(&["--insecure-http"], &cluster), Vec::<String>::new());
        let plain = warned(&["--insecure-http", "--listen", "0.0.0.0:8080"], &cluster);
        assert!(
            plain.len() == 1 && plain[0].contains("plain HTTP"),
            "{plain:?}"
        );
        let no_id = warned(&mtls, &IndexOptions::default());
        assert!(
            no_id.len() == 1 && no_id[0].contains("--cluster-resource-id"),
            "{no_id:?}"
        );
    }
}
