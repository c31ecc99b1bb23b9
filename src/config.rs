//! Engine configuration from flags, `SCOPEGATE_*` environment variables and an optional
//! config file (YAML or JSON), in that order of precedence.

use crate::engine::{EngineOptions, NoMatch};
use crate::model::Scope;
use crate::policy::IndexOptions;
use clap::{Args, ValueEnum};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The no-match answer as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoMatchArg {
    NoOpinion,
    Deny,
}

impl NoMatchArg {
    /// The engine's answer this flag value names.
    fn answer(self) -> NoMatch {
        match self {
            NoMatchArg::NoOpinion => NoMatch::NoOpinion,
            NoMatchArg::Deny => NoMatch::Deny,
        }
    }
}

/// The source order as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceOrderArg {
    DenyFirst,
    RbacFirst,
}

/// Where the Azure decision takes groups from, as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupsFromArg {
    Token,
    Directory,
}

/// Flags every command that decides shares.
#[derive(Debug, Clone, Default, Args)]
pub struct EngineArgs {
    /// Policy directory or file (repeatable). Every *.json, *.yaml and *.yml below it is loaded.
    #[arg(
        long = "policies",
        value_name = "DIR",
        env = "SCOPEGATE_POLICIES",
        value_delimiter = ','
    )]
    pub policies: Vec<PathBuf>,
    /// ARM resource id of the AKS cluster this webhook authorizes for.
    #[arg(long, value_name = "ID", env = "SCOPEGATE_CLUSTER_RESOURCE_ID")]
    pub cluster_resource_id: Option<String>,
    /// Configuration file (YAML or JSON) with the same settings in camelCase.
    #[arg(long, value_name = "FILE", env = "SCOPEGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Answer when nothing grants: `no-opinion` (next authorizer decides) or `deny` (as AKS).
    #[arg(long, value_enum, env = "SCOPEGATE_NO_MATCH")]
    pub no_match: Option<NoMatchArg>,
    /// Azure's answer for users without an object id.
    #[arg(long, value_enum, env = "SCOPEGATE_NON_AAD_USERS")]
    pub non_aad_users: Option<NoMatchArg>,
    /// The `extra` key that holds the Entra object id.
    #[arg(long, value_name = "KEY", env = "SCOPEGATE_PRINCIPAL_CLAIM")]
    pub principal_claim: Option<String>,
    /// Evaluate Azure assignments for `system:` users too (Guard skips them).
    #[arg(long, env = "SCOPEGATE_EVALUATE_SYSTEM_USERS")]
    pub evaluate_system_users: bool,
    /// Do not allow discovery paths (`/api`, `/openapi`, `/version`, `/healthz`) to every Entra user.
    #[arg(long, env = "SCOPEGATE_NO_DISCOVERY_SHORTCUT")]
    pub no_discovery_shortcut: bool,
    /// Order of sources: `deny-first` (Azure deny assignments, then any allow) or
    /// `rbac-first` (a Kubernetes RBAC grant wins over an Azure deny assignment).
    #[arg(long, value_enum, env = "SCOPEGATE_SOURCE_ORDER")]
    pub source_order: Option<SourceOrderArg>,
    /// Also take Kubernetes RBAC objects from the live cluster (watch, kept current).
    #[arg(long, env = "SCOPEGATE_WATCH_CLUSTER_RBAC")]
    pub watch_cluster_rbac: bool,
    /// Kubeconfig for the live RBAC source (default: in-cluster, then ~/.kube/config).
    #[arg(long, value_name = "FILE", env = "SCOPEGATE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Action prefix: `Microsoft.ContainerService/managedClusters` (AKS) or
    /// `Microsoft.Kubernetes/connectedClusters` (Arc).
    #[arg(long, value_name = "PREFIX", env = "SCOPEGATE_ACTION_PREFIX")]
    pub action_prefix: Option<String>,
    /// Groups for Azure decisions: `token` (the request's, plus their parent groups when a
    /// directory snapshot is loaded) or `directory` (the object id's transitive groups in
    /// the directory snapshot: entra-users.json, entra-groups.json, entra-group-members/).
    #[arg(long, value_enum, env = "SCOPEGATE_GROUPS_FROM")]
    pub groups_from: Option<GroupsFromArg>,
}

/// The config file's shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub policies: Vec<PathBuf>,
    /// Copies of the cluster's own RBAC objects (its bootstrap defaults, an export), loaded
    /// with `policies` only while the live RBAC source is off: with it on, the cluster's
    /// objects are read instead, and one deleted there must not keep granting from a file.
    #[serde(default)]
    pub cluster_rbac_copies: Vec<PathBuf>,
    pub cluster_resource_id: Option<String>,
    pub no_match: Option<NoMatchArg>,
    pub non_aad_users: Option<NoMatchArg>,
    pub principal_claim: Option<String>,
    #[serde(default)]
    pub evaluate_system_users: bool,
    #[serde(default)]
    pub no_discovery_shortcut: bool,
    pub action_prefix: Option<String>,
    pub source_order: Option<SourceOrderArg>,
    pub groups_from: Option<GroupsFromArg>,
    #[serde(default)]
    pub watch_cluster_rbac: bool,
    pub kubeconfig: Option<PathBuf>,
    /// Server settings (`serve` only); see `server::ServeArgs`.
    #[serde(default)]
    pub server: serde_json::Value,
}

/// Configuration problems.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{0}`: {1}")]
    Read(String, std::io::Error),
    #[error("invalid config file `{0}`: {1}")]
    Parse(String, String),
    #[error("invalid --cluster-resource-id: {0}")]
    ClusterId(String),
    #[error("no policy directory given: use --policies DIR")]
    NoPolicies,
    #[error("token authentication: {0}")]
    Authn(String),
    #[error("workload identity: {0}")]
    Workload(String),
}

/// Everything the engine and the loader need.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What a decision reads besides the policy.
    pub options: EngineOptions,
    /// What the policy is indexed for (cluster, action prefix).
    pub index: IndexOptions,
    pub policies: Vec<PathBuf>,
    /// Watch Kubernetes RBAC in the live cluster, with this kubeconfig (None: in-cluster/default).
    pub watch_cluster_rbac: bool,
    pub kubeconfig: Option<PathBuf>,
    pub file: ConfigFile,
}

impl EngineArgs {
    /// Merges flags, environment and config file into engine options, for `serve`: with the
    /// live RBAC source on, the cluster's objects stand in for `clusterRbacCopies`.
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        self.resolve_with(true)
    }

    /// As [`Self::resolve`], for the commands that decide on files alone (`check`,
    /// `explain`, `validate`): `clusterRbacCopies` are loaded whatever the live-source setting.
    pub fn resolve_offline(&self) -> Result<Resolved, ConfigError> {
        self.resolve_with(false)
    }

    fn resolve_with(&self, live_source: bool) -> Result<Resolved, ConfigError> {
        let file = match &self.config {
            Some(path) => read_config(path)?,
            None => ConfigFile::default(),
        };
        let mut options = EngineOptions::default();
        let mut index = IndexOptions::default();
        let cluster = self
            .cluster_resource_id
            .clone()
            .or_else(|| file.cluster_resource_id.clone());
        if let Some(id) = cluster.filter(|s| !s.trim().is_empty()) {
            let scope = Scope::parse(&id).map_err(|e| ConfigError::ClusterId(e.to_string()))?;
            if scope.subscription().is_none() {
                return Err(ConfigError::ClusterId(format!(
                    "`{id}` is not a resource id below a subscription"
                )));
            }
            index.cluster_resource_id = Some(scope);
        }
        if let Some(v) = self.no_match.or(file.no_match) {
            options.no_match = v.answer();
        }
        if let Some(v) = self.non_aad_users.or(file.non_aad_users) {
            options.non_aad_users = v.answer();
        }
        if let Some(v) = self
            .principal_claim
            .clone()
            .or_else(|| file.principal_claim.clone())
        {
            options.principal_claim = v;
        }
        if let Some(v) = self
            .action_prefix
            .clone()
            .or_else(|| file.action_prefix.clone())
        {
            index.action_prefix = v.trim_end_matches('/').to_string();
        }
        if let Some(order) = self.source_order.or(file.source_order) {
            options.order = match order {
                SourceOrderArg::DenyFirst => crate::engine::SourceOrder::DenyFirst,
                SourceOrderArg::RbacFirst => crate::engine::SourceOrder::RbacFirst,
            };
        }
        if let Some(from) = self.groups_from.or(file.groups_from) {
            options.groups_from = match from {
                GroupsFromArg::Token => crate::engine::GroupsFrom::Token,
                GroupsFromArg::Directory => crate::engine::GroupsFrom::Directory,
            };
        }
        options.skip_system_users = !(self.evaluate_system_users || file.evaluate_system_users);
        options.discovery_paths = !(self.no_discovery_shortcut || file.no_discovery_shortcut);
        let watch_cluster_rbac = self.watch_cluster_rbac || file.watch_cluster_rbac;
        let policies = if self.policies.is_empty() {
            let copies = if watch_cluster_rbac && live_source {
                &[][..]
            } else {
                &file.cluster_rbac_copies[..]
            };
            file.policies.iter().chain(copies).cloned().collect()
        } else {
            self.policies.clone()
        };
        if policies.is_empty() {
            return Err(ConfigError::NoPolicies);
        }
        Ok(Resolved {
            options,
            index,
            policies,
            watch_cluster_rbac,
            kubeconfig: self.kubeconfig.clone().or_else(|| file.kubeconfig.clone()),
            file,
        })
    }
}

fn read_config(path: &Path) -> Result<ConfigFile, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(name.clone(), e))?;
    serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse(name, e.to_string()))
}

/// Token authentication flags (`POST /authenticate`, and `check` of a TokenReview), and the
/// config file's `server.authentication` section with the same settings in camelCase.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuthnArgs {
    /// Token issuer, exactly as the tokens' `iss` spells it (repeatable: the v1 form
    /// `https://sts.windows.net/<tenant>/` and the v2 form
    /// `https://login.microsoftonline.com/<tenant>/v2.0` of one tenant). Turns on /authenticate.
    #[arg(
        long = "authn-issuer",
        value_name = "URL",
        env = "SCOPEGATE_AUTHN_ISSUER",
        value_delimiter = ','
    )]
    pub issuers: Vec<String>,
    /// Audience a token's `aud` must contain (repeatable), e.g. AKS's server application
    /// `6dae42f8-4368-4678-94ff-3960e28e3630`.
    #[arg(
        long = "authn-audience",
        value_name = "AUD",
        env = "SCOPEGATE_AUTHN_AUDIENCE",
        value_delimiter = ','
    )]
    pub audiences: Vec<String>,
    /// Signing keys from a JWKS file instead of OIDC discovery (offline).
    #[arg(
        long = "authn-jwks-file",
        value_name = "FILE",
        env = "SCOPEGATE_AUTHN_JWKS_FILE"
    )]
    pub jwks_file: Option<PathBuf>,
    /// CA certificates (PEM) for discovery over HTTPS, instead of the system roots.
    #[arg(
        long = "authn-ca-file",
        value_name = "FILE",
        env = "SCOPEGATE_AUTHN_CA_FILE"
    )]
    pub ca_file: Option<PathBuf>,
    /// Claim read as the username [default: upn]; absent or empty falls back to `oid` (as AKS).
    #[arg(long = "authn-username-claim", value_name = "CLAIM")]
    pub username_claim: Option<String>,
    /// Prefix put before every username (none by default, as AKS).
    #[arg(long = "authn-username-prefix", value_name = "PREFIX")]
    pub username_prefix: Option<String>,
    /// Signature algorithm accepted (repeatable) [default: RS256]: RS256 (Entra's), ES256.
    #[arg(long = "authn-algorithm", value_name = "ALG", value_delimiter = ',')]
    pub algorithms: Vec<String>,
}

/// Token authentication, resolved.
#[derive(Debug, Clone)]
pub struct AuthnSettings {
    pub rules: crate::identity::TokenRules,
    pub keys: crate::server::issuer_keys::KeySource,
}

impl AuthnArgs {
    /// The flags over the config file's `server.authentication` section.
    pub fn over(&self, file: Option<&AuthnArgs>) -> AuthnArgs {
        let Some(f) = file else {
            return self.clone();
        };
        let pick = |flags: &Vec<String>, file: &Vec<String>| {
            if flags.is_empty() {
                file.clone()
            } else {
                flags.clone()
            }
        };
        AuthnArgs {
            issuers: pick(&self.issuers, &f.issuers),
            audiences: pick(&self.audiences, &f.audiences),
            jwks_file: self.jwks_file.clone().or_else(|| f.jwks_file.clone()),
            ca_file: self.ca_file.clone().or_else(|| f.ca_file.clone()),
            username_claim: self
                .username_claim
                .clone()
                .or_else(|| f.username_claim.clone()),
            username_prefix: self
                .username_prefix
                .clone()
                .or_else(|| f.username_prefix.clone()),
            algorithms: pick(&self.algorithms, &f.algorithms),
        }
    }

    /// The settings, or `None` when no issuer is configured (token authentication off).
    pub fn resolve(&self) -> Result<Option<AuthnSettings>, ConfigError> {
        if self.issuers.is_empty() {
            let stray = if !self.audiences.is_empty() {
                Some("--authn-audience")
            } else if self.jwks_file.is_some() {
                Some("--authn-jwks-file")
            } else {
                None
            };
            return match stray {
                Some(flag) => Err(ConfigError::Authn(format!(
                    "{flag} needs --authn-issuer (the issuers whose tokens are accepted)"
                ))),
                None => Ok(None),
            };
        }
        if self.audiences.is_empty() {
            return Err(ConfigError::Authn(
                "--authn-issuer needs --authn-audience (the audiences a token must name)".into(),
            ));
        }
        if self
            .issuers
            .iter()
            .chain(&self.audiences)
            .any(|v| v.trim().is_empty())
        {
            return Err(ConfigError::Authn(
                "an empty --authn-issuer or --authn-audience would match an empty claim".into(),
            ));
        }
        for issuer in &self.issuers {
            if !issuer.starts_with("https://") {
                return Err(ConfigError::Authn(format!(
                    "--authn-issuer `{issuer}` is not an https:// URL"
                )));
            }
        }
        // What is not configured is as `TokenRules::default()` has it.
        let mut rules = crate::identity::TokenRules {
            issuers: self
                .issuers
                .iter()
                .map(crate::identity::Issuer::new)
                .collect(),
            audiences: self.audiences.clone(),
            ..crate::identity::TokenRules::default()
        };
        if !self.algorithms.is_empty() {
            rules.algorithms.clear();
        }
        for name in &self.algorithms {
            let algorithm = crate::identity::token::parse_algorithm(name).ok_or_else(|| {
                ConfigError::Authn(format!(
                    "--authn-algorithm `{name}` is not one of RS256, ES256"
                ))
            })?;
            if !rules.algorithms.contains(&algorithm) {
                rules.algorithms.push(algorithm);
            }
        }
        if let Some(claim) = &self.username_claim {
            rules.username_claim.clone_from(claim);
        }
        if let Some(prefix) = &self.username_prefix {
            rules.username_prefix.clone_from(prefix);
        }
        let keys = match &self.jwks_file {
            Some(file) => crate::server::issuer_keys::KeySource::File(file.clone()),
            None => crate::server::issuer_keys::KeySource::Discovery {
                issuers: self.issuers.clone(),
                ca_file: self.ca_file.clone(),
            },
        };
        Ok(Some(AuthnSettings { rules, keys }))
    }
}

/// Workload identity flags (CheckAccess questions about service accounts, on the endpoint and
/// in `check`), and the config file's `server.workloadIdentity` section in camelCase.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WorkloadArgs {
    /// The cluster's service-account issuer, exactly as its tokens' `iss` and the federated
    /// credentials spell it (AKS: `https://<region>.oic.prod-aks.azure.com/<tenant>/<id>/`,
    /// trailing slash included). Questions that name no issuer assume it; projected tokens
    /// must be issued by it.
    #[arg(
        long = "cluster-issuer",
        value_name = "URL",
        env = "SCOPEGATE_CLUSTER_ISSUER"
    )]
    pub cluster_issuer: Option<String>,
    /// The audience of projected tokens [default: api://AzureADTokenExchange].
    #[arg(
        id = "workload_audience",
        long = "workload-audience",
        value_name = "AUD"
    )]
    pub audience: Option<String>,
    /// The cluster issuer's signing keys from a JWKS file (`kubectl get --raw
    /// /openid/v1/jwks`) instead of OIDC discovery at --cluster-issuer.
    #[arg(
        id = "cluster_jwks_file",
        long = "cluster-jwks-file",
        value_name = "FILE",
        env = "SCOPEGATE_CLUSTER_JWKS_FILE"
    )]
    pub jwks_file: Option<PathBuf>,
    /// CA certificates (PEM) for discovery at --cluster-issuer, instead of the system roots.
    #[arg(id = "cluster_ca_file", long = "cluster-ca-file", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Workload identity, resolved.
#[derive(Debug, Clone)]
pub struct WorkloadSettings {
    /// The issuer a question assumes when it names none.
    pub cluster_issuer: Option<String>,
    /// The audience a question assumes when it names none.
    pub audience: String,
    /// How projected tokens are checked, when a cluster issuer is configured.
    pub tokens: Option<AuthnSettings>,
}

impl WorkloadSettings {
    /// What a CheckAccess body about a service account assumes when it does not say.
    pub fn defaults(&self) -> crate::sar::check_access::Defaults {
        crate::sar::check_access::Defaults {
            issuer: self.cluster_issuer.clone(),
            audience: self.audience.clone(),
        }
    }
}

impl WorkloadArgs {
    /// The flags over the config file's `server.workloadIdentity` section.
    pub fn over(&self, file: Option<&WorkloadArgs>) -> WorkloadArgs {
        let Some(f) = file else {
            return self.clone();
        };
        WorkloadArgs {
            cluster_issuer: self
                .cluster_issuer
                .clone()
                .or_else(|| f.cluster_issuer.clone()),
            audience: self.audience.clone().or_else(|| f.audience.clone()),
            jwks_file: self.jwks_file.clone().or_else(|| f.jwks_file.clone()),
            ca_file: self.ca_file.clone().or_else(|| f.ca_file.clone()),
        }
    }

    pub fn resolve(&self) -> Result<WorkloadSettings, ConfigError> {
        let audience = self
            .audience
            .clone()
            .unwrap_or_else(|| crate::model::workload::TOKEN_EXCHANGE_AUDIENCE.to_string());
        if audience.trim().is_empty() {
            return Err(ConfigError::Workload(
                "an empty --workload-audience would match an empty claim".into(),
            ));
        }
        let Some(issuer) = self.cluster_issuer.clone() else {
            if self.jwks_file.is_some() {
                return Err(ConfigError::Workload(
                    "--cluster-jwks-file needs --cluster-issuer (the issuer of the keys)".into(),
                ));
            }
            return Ok(WorkloadSettings {
                cluster_issuer: None,
                audience,
                tokens: None,
            });
        };
        if !issuer.starts_with("https://") {
            return Err(ConfigError::Workload(format!(
                "--cluster-issuer `{issuer}` is not an https:// URL"
            )));
        }
        let keys = match &self.jwks_file {
            Some(file) => crate::server::issuer_keys::KeySource::File(file.clone()),
            None => crate::server::issuer_keys::KeySource::Discovery {
                issuers: vec![issuer.clone()],
                ca_file: self.ca_file.clone(),
            },
        };
        let tokens = AuthnSettings {
            rules: crate::identity::TokenRules {
                issuers: vec![crate::identity::Issuer::new(issuer.as_str())],
                audiences: vec![audience.clone()],
                // kube-apiserver signs with the RSA or EC key it is given.
                algorithms: vec![
                    jsonwebtoken::Algorithm::RS256,
                    jsonwebtoken::Algorithm::ES256,
                ],
                ..crate::identity::TokenRules::default()
            },
            keys,
        };
        Ok(WorkloadSettings {
            cluster_issuer: Some(issuer),
            audience,
            tokens: Some(tokens),
        })
    }
}
