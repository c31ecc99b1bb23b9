//! The command line: `check`, `explain` and `validate` run the engine on policy files without
//! a server; `serve` runs the webhook.

use crate::config::EngineArgs;
use crate::engine::{self, explain};
use crate::model::check_access::{
    AccessDecision, CheckAccess, MAX_ACTIONS, OperationRequest, Subject,
};
use crate::model::name_hash::object_id;
use crate::model::workload::{WorkloadMode, WorkloadQuestion};
use crate::model::{AccessRequest, NonResourceAttributes, ResourceAttributes, Scope, Verdict};
use crate::sar;
use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;

/// Kubernetes authorization webhook: Azure RBAC and Kubernetes RBAC, decided in memory.
#[derive(Debug, Parser)]
#[command(name = "scopegate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decide one SubjectAccessReview offline and print it with `status` filled in.
    /// Exit 0 when allowed, 1 when denied, 2 on no opinion, 3 on bad input or bad policy.
    Check(CheckArgs),
    /// Like `check`, but print the whole decision path in readable form (same exit codes).
    Explain(CheckArgs),
    /// Load and validate policy; print every diagnostic; exit 3 on errors.
    Validate(ValidateArgs),
    /// Serve the webhook (HTTPS) and the admin endpoints.
    Serve(Box<crate::server::ServeArgs>),
    /// Write a throwaway CA, serving and client certificate for trying scopegate out.
    Certs(CertsArgs),
    /// Keep a policy directory current from Azure Resource Manager and Microsoft Graph.
    /// With --once: exit 0 when every source published or was unchanged, 1 when one failed
    /// or was held, 3 on a bad config.
    Sync(Box<crate::sync::SyncArgs>),
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, ca.key, server.crt, server.key, client.crt, client.key into
    /// (keys 0600, certificates 0644).
    #[arg(long, value_name = "DIR")]
    pub out_dir: std::path::PathBuf,
    /// Issue the server and client certificates from this existing CA certificate (with
    /// --ca-key); no new CA is written.
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Private key of --ca-cert (PKCS#8 or SEC1 PEM).
    #[arg(long, value_name = "FILE", requires = "ca_cert")]
    pub ca_key: Option<std::path::PathBuf>,
    /// Replace files that already exist in --out-dir.
    #[arg(long)]
    pub force: bool,
    /// DNS name or IP address of the serving certificate (repeatable).
    #[arg(long = "host", value_name = "HOST", default_values_t = ["127.0.0.1".to_string(), "localhost".to_string()])]
    pub hosts: Vec<String>,
    /// Common name of the client certificate (what --allowed-client-names checks).
    #[arg(long, default_value = "kube-apiserver")]
    pub client_name: String,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// A request from a file or from flags.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// SubjectAccessReview JSON (v1 or v1beta1) to decide; `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE", conflicts_with_all = ["user", "verb", "path"])]
    pub file: Option<String>,
    /// User name.
    #[arg(long = "as", value_name = "USER")]
    pub user: Option<String>,
    /// Group (repeatable).
    #[arg(long = "as-group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Extra field `KEY=VALUE` (repeatable), e.g. `scopegate.io/oid=<object id>`.
    #[arg(long = "extra", value_name = "KEY=VALUE")]
    pub extra: Vec<String>,
    /// Verb (get, list, create, …).
    #[arg(long)]
    pub verb: Option<String>,
    /// Resource, optionally with subresource: `pods` or `pods/exec`; for a CheckAccess
    /// question (--object-id, --service-account), the Azure resource id.
    #[arg(long, value_name = "RESOURCE[/SUB]|ID")]
    pub resource: Option<String>,
    /// API group of the resource (empty for core).
    #[arg(long = "api-group", value_name = "GROUP", default_value = "")]
    pub api_group: String,
    /// Namespace.
    #[arg(short = 'n', long = "namespace", value_name = "NS", default_value = "")]
    pub namespace: String,
    /// Object name.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub name: String,
    /// Non-resource path such as `/metrics` (instead of --resource).
    #[arg(long, value_name = "PATH", conflicts_with = "resource")]
    pub path: Option<String>,
    /// Decide at this time (RFC 3339, e.g. `2026-01-31T09:00:00Z`) instead of the system
    /// clock's: time-bound (PIM) assignments grant only inside their window.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<crate::model::Timestamp>,
    #[command(flatten)]
    pub authn: crate::config::AuthnArgs,
    /// CheckAccess: the Entra object id asking (with --as-group for its groups).
    #[arg(long, value_name = "OID", conflicts_with_all = ["file", "user", "verb", "path"])]
    pub object_id: Option<String>,
    /// CheckAccess: the Kubernetes service account asking, through workload identity.
    #[arg(long, value_name = "NS/NAME", conflicts_with_all = ["file", "user", "verb", "path", "object_id"])]
    pub service_account: Option<String>,
    /// CheckAccess: a projected service-account token (file) instead of --service-account,
    /// checked against the cluster issuer's keys.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["file", "user", "verb", "path", "object_id", "service_account"])]
    pub service_account_token: Option<std::path::PathBuf>,
    /// CheckAccess: an operation to ask about (repeatable), e.g.
    /// `Microsoft.KeyVault/vaults/secrets/getSecret/action`.
    #[arg(long = "action", value_name = "OPERATION")]
    pub actions: Vec<String>,
    /// CheckAccess: the operations are data actions (DataActions), not control-plane ones.
    #[arg(long)]
    pub data_action: bool,
    /// CheckAccess about a service account: `configured` (the identity its annotation names)
    /// or `possible` (every identity that trusts it).
    #[arg(long, value_enum, default_value = "configured")]
    pub mode: WorkloadModeArg,
    #[command(flatten)]
    pub workload: crate::config::WorkloadArgs,
}

/// [`WorkloadMode`] on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WorkloadModeArg {
    Configured,
    Possible,
}

fn parse_now(text: &str) -> Result<crate::model::Timestamp, String> {
    crate::model::Timestamp::parse_rfc3339(text).map_err(|e| e.to_string())
}

/// The decision time: `--now`, else the system clock.
fn decision_time(args: &CheckArgs) -> crate::model::Timestamp {
    args.now
        .unwrap_or_else(|| crate::model::Timestamp::from_system(std::time::SystemTime::now()))
}

/// An error that ends a command with exit code 3 ([`EXIT_ERROR`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit code of a command that failed (bad input, bad policy): apart from the three answers.
pub const EXIT_ERROR: u8 = 3;

/// Exit code of `check` and `explain`: 0 allowed, 1 denied, 2 no opinion, so a script can
/// tell a deny from no opinion.
pub fn exit_code(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Allow => 0,
        Verdict::Deny => 1,
        Verdict::NoOpinion => 2,
    }
}

/// Warns when a request names a resource kube-apiserver does not serve in that group, naming
/// the built-in one it likely means (`pod` for `pods`, `deployments` without `apps`).
fn warn_unknown_resource(request: &AccessRequest) {
    let Some(a) = request.resource_attributes.as_deref() else {
        return;
    };
    if let Some(hint) = crate::policy::known_actions::resource_hint(&a.group, &a.resource) {
        eprintln!("warning: {hint}");
    }
}

/// The bytes of `-f FILE` (`-` is standard input).
fn read_input(file: &str) -> Result<Vec<u8>, UsageError> {
    let mut body = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut body).map(|_| ())
    } else {
        std::fs::read(file).map(|b| body = b)
    };
    read.map_err(|e| UsageError(format!("cannot read `{file}`: {e}")))?;
    Ok(body)
}

/// The `kind` of a JSON object, if it has one.
fn kind_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    serde_json::from_slice::<Kind>(body).ok()?.kind
}

/// `check` of a TokenReview: verifies the token with the `--authn-*` flags (keys from the
/// JWKS file or by discovery) against the policy's directory, and prints the answer.
fn check_token_review(args: &CheckArgs, body: &[u8]) -> Result<Verdict, UsageError> {
    use crate::sar::token_review;
    use crate::server::authenticate::{Authn, Outcome, review_token};
    use crate::server::issuer_keys::IssuerKeys;
    let source = args.file.as_deref().unwrap_or("-");
    let review = token_review::decode(body).map_err(|e| UsageError(format!("`{source}`: {e}")))?;
    let resolved = args
        .engine
        .resolve_offline()
        .map_err(|e| UsageError(e.to_string()))?;
    let in_file = server_section(&resolved)?.authentication;
    let settings = args
        .authn
        .over(in_file.as_ref())
        .resolve()
        .map_err(|e| UsageError(e.to_string()))?
        .ok_or_else(|| {
            UsageError(
                "a TokenReview is checked with --authn-issuer and --authn-audience (and --authn-jwks-file offline)".into(),
            )
        })?;
    let now = u64::try_from(decision_time(args).unix_millis() / 1000)
        .map_err(|_| UsageError("the decision time is before 1970".into()))?;
    refuse_live_source(&args.engine)?;
    let (snapshot, options) = printing_warnings(load_resolved(resolved)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    let answer = runtime.block_on(async {
        let keys = IssuerKeys::new(settings.keys.clone(), None)
            .map_err(|e| UsageError(format!("{e:#}")))?;
        keys.refresh()
            .await
            .map_err(|e| UsageError(format!("signing keys: {e}")))?;
        let authn = Authn {
            rules: settings.rules.clone(),
            keys: std::sync::Arc::new(keys),
            cache: crate::identity::cache::TokenCache::new(1 << 20),
            groups_from: options.groups_from,
        };
        let digest = crate::identity::cache::digest(&review.token);
        let directory = snapshot.directory.as_deref();
        Ok::<_, UsageError>(review_token(&authn, &review, &digest, directory, now).await)
    })?;
    let (bytes, outcome) = answer;
    let verdict = match outcome {
        Outcome::Authenticated { warning, .. } => {
            if let Some(warning) = warning {
                eprintln!("warning: {}", warning.message());
            }
            Verdict::Allow
        }
        Outcome::Rejected(_) => Verdict::Deny,
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| UsageError(e.to_string()))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
    Ok(verdict)
}

/// The review to decide and the JSON object to print it in.
fn read_review(args: &CheckArgs) -> Result<(AccessRequest, Value), UsageError> {
    if let Some(file) = &args.file {
        let body = read_input(file)?;
        let review = sar::decode(&body).map_err(|e| UsageError(format!("`{file}`: {e}")))?;
        let object: Value = serde_json::from_slice(&body).map_err(|e| UsageError(e.to_string()))?;
        return Ok((review.request, object));
    }
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for kv in &args.extra {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--extra `{kv}` is not KEY=VALUE")))?;
        extra.entry(k.to_string()).or_default().push(v.to_string());
    }
    let verb = args
        .verb
        .clone()
        .ok_or_else(|| UsageError("give -f FILE, or --verb with --resource or --path".into()))?;
    let mut request = AccessRequest {
        user: args.user.clone().unwrap_or_default(),
        groups: args.groups.iter().collect(),
        extra,
        ..AccessRequest::default()
    };
    match (&args.resource, &args.path) {
        (Some(resource), None) => {
            let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
            request.resource_attributes = Some(Box::new(ResourceAttributes {
                namespace: args.namespace.clone(),
                verb,
                group: args.api_group.clone(),
                resource: resource.to_string(),
                subresource: subresource.to_string(),
                name: args.name.clone(),
                ..ResourceAttributes::default()
            }));
        }
        (None, Some(path)) => {
            request.non_resource_attributes = Some(NonResourceAttributes {
                path: path.clone(),
                verb,
            });
        }
        _ => return Err(UsageError("give --resource or --path with --verb".into())),
    }
    let object = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "metadata": {},
        "spec": request,
    });
    Ok((request, object))
}

/// The offline commands read policy files only: the live RBAC source is refused rather than
/// silently ignored, so a decision is never taken as if the cluster's RBAC were in it.
fn refuse_live_source(engine: &EngineArgs) -> Result<(), UsageError> {
    let flag = if engine.watch_cluster_rbac {
        "--watch-cluster-rbac (SCOPEGATE_WATCH_CLUSTER_RBAC)"
    } else if engine.kubeconfig.is_some() {
        "--kubeconfig (SCOPEGATE_KUBECONFIG)"
    } else {
        return Ok(());
    };
    Err(UsageError(format!(
        "{flag} is for `serve` only: `check`, `explain` and `validate` decide on the policy files \
         alone (export the cluster's RBAC with `kubectl get roles,rolebindings,clusterroles,\
         clusterrolebindings -A -o yaml` and pass it with --policies)"
    )))
}

fn load(
    engine: &EngineArgs,
) -> Result<
    (
        std::sync::Arc<crate::policy::Snapshot>,
        engine::EngineOptions,
    ),
    UsageError,
> {
    Ok(printing_warnings(load_with_warnings(engine)?))
}

/// The snapshot loaded, its warnings printed.
fn printing_warnings(
    (loaded, options): (crate::Loaded, engine::EngineOptions),
) -> (
    std::sync::Arc<crate::policy::Snapshot>,
    engine::EngineOptions,
) {
    for w in loaded.warnings {
        eprintln!("{w}");
    }
    (std::sync::Arc::new(loaded.snapshot), options)
}

/// Loads the policy the engine arguments name, its warnings and notes left to the caller.
fn load_with_warnings(
    engine: &EngineArgs,
) -> Result<(crate::Loaded, engine::EngineOptions), UsageError> {
    refuse_live_source(engine)?;
    let resolved = engine
        .resolve_offline()
        .map_err(|e| UsageError(e.to_string()))?;
    load_resolved(resolved)
}

/// Loads the policy of engine arguments already resolved (offline), its warnings and notes
/// left to the caller.
fn load_resolved(
    resolved: crate::config::Resolved,
) -> Result<(crate::Loaded, engine::EngineOptions), UsageError> {
    if resolved.watch_cluster_rbac || resolved.kubeconfig.is_some() {
        eprintln!(
            "warning: the config file's `watchClusterRbac`/`kubeconfig` apply to `serve` only: \
             this command decides on the policy files alone (with `clusterRbacCopies`)"
        );
    }
    match crate::load_snapshot(&resolved.policies, None, &resolved.index, 1) {
        Ok(loaded) => Ok((loaded, resolved.options)),
        Err(e) => {
            for d in &e.0 {
                eprintln!("{d}");
            }
            Err(UsageError(format!(
                "policy not loaded: {} error(s)",
                e.0.iter().filter(|d| d.is_error()).count()
            )))
        }
    }
}

/// `check`: prints the review with its status; returns the verdict.
pub fn run_check(args: &CheckArgs) -> Result<Verdict, UsageError> {
    if let Some(file) = &args.file {
        let body = read_input(file)?;
        if kind_of(&body).as_deref() == Some("TokenReview") {
            return check_token_review(args, &body);
        }
        if sar::check_access::is_check_access(&body) {
            let question = check_access_body(args, &body)?;
            return answer_check_access(args, question, false);
        }
        return check_access_review(args, &body);
    }
    if let Some(question) = check_access_flags(args)? {
        return answer_check_access(args, question, false);
    }
    let (request, object) = read_review(args)?;
    decide_and_print(args, request, object)
}

/// The config file's `server:` section, read as `serve` reads it.
fn server_section(
    resolved: &crate::config::Resolved,
) -> Result<crate::server::ServerFile, UsageError> {
    crate::server::ServerFile::read(&resolved.file.server).map_err(|e| UsageError(format!("{e:#}")))
}

/// The workload identity settings: the flags over the config file's `server.workloadIdentity`.
fn workload_settings(args: &CheckArgs) -> Result<crate::config::WorkloadSettings, UsageError> {
    let resolved = args
        .engine
        .resolve_offline()
        .map_err(|e| UsageError(e.to_string()))?;
    let in_file = server_section(&resolved)?.workload_identity;
    args.workload
        .over(in_file.as_ref())
        .resolve()
        .map_err(|e| UsageError(e.to_string()))
}

/// A CheckAccess body (Azure's, or a workload question), a service account's issuer and
/// audience defaulting to the configured ones.
fn check_access_body(args: &CheckArgs, body: &[u8]) -> Result<CheckAccess, UsageError> {
    let source = args.file.as_deref().unwrap_or("-");
    let settings = workload_settings(args)?;
    sar::check_access::decode_with(body, &settings.defaults())
        .map_err(|e| UsageError(format!("`{source}`: {e}")))
}

/// A CheckAccess question from the flags (--object-id, --service-account or
/// --service-account-token with --resource and --action), if they ask one.
fn check_access_flags(args: &CheckArgs) -> Result<Option<CheckAccess>, UsageError> {
    if args.object_id.is_none()
        && args.service_account.is_none()
        && args.service_account_token.is_none()
    {
        return Ok(None);
    }
    let resource = args.resource.as_deref().ok_or_else(|| {
        UsageError("a CheckAccess question needs --resource <Azure resource id>".into())
    })?;
    let resource = Scope::parse(resource).map_err(|e| UsageError(format!("--resource: {e}")))?;
    if args.actions.is_empty() {
        return Err(UsageError(
            "a CheckAccess question needs --action <operation>".into(),
        ));
    }
    if args.actions.len() > MAX_ACTIONS {
        return Err(UsageError(format!(
            "{} operations asked: CheckAccess takes at most {MAX_ACTIONS}",
            args.actions.len()
        )));
    }
    let actions = args
        .actions
        .iter()
        .map(|id| OperationRequest {
            id: id.clone(),
            is_data_action: args.data_action,
            attributes: Default::default(),
        })
        .collect();
    let guid = |text: &str, flag: &str| {
        object_id(text)
            .ok_or_else(|| UsageError(format!("{flag} `{text}` is not an object id (GUID)")))
    };
    let mode = match args.mode {
        WorkloadModeArg::Configured => WorkloadMode::Configured,
        WorkloadModeArg::Possible => WorkloadMode::Possible,
    };
    let subject = if let Some(oid) = &args.object_id {
        Subject::Principal {
            object_id: guid(oid, "--object-id")?,
            groups: args
                .groups
                .iter()
                .map(|g| guid(g, "--as-group"))
                .collect::<Result<_, _>>()?,
        }
    } else if let Some(account) = &args.service_account {
        let settings = workload_settings(args)?;
        let (namespace, name) = account
            .split_once('/')
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| {
                UsageError(format!(
                    "--service-account `{account}` is not NAMESPACE/NAME"
                ))
            })?;
        Subject::ServiceAccount(WorkloadQuestion {
            namespace: namespace.to_string(),
            name: name.to_string(),
            issuer: settings.cluster_issuer.ok_or_else(|| {
                UsageError("--service-account needs --cluster-issuer (the cluster's service-account issuer)".into())
            })?,
            audience: settings.audience,
            mode,
        })
    } else {
        let file = args
            .service_account_token
            .as_deref()
            .unwrap_or(std::path::Path::new("-"));
        let token = std::fs::read_to_string(file)
            .map_err(|e| UsageError(format!("cannot read `{}`: {e}", file.display())))?;
        Subject::ServiceAccountToken {
            token: token.trim().to_string(),
            audience: workload_settings(args)?.audience,
            mode,
        }
    };
    Ok(Some(CheckAccess {
        subject,
        actions,
        resource,
    }))
}

/// The question with a projected token's subject replaced by the account it names, once it
/// passes against the cluster issuer's keys (JWKS file or discovery) at the decision time.
fn verify_subject(
    args: &CheckArgs,
    question: CheckAccess,
    now: crate::model::Timestamp,
) -> Result<CheckAccess, UsageError> {
    if !matches!(question.subject, Subject::ServiceAccountToken { .. }) {
        return Ok(question);
    }
    let settings = workload_settings(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let workload = crate::server::workload_identity(&settings, None)
            .await
            .map_err(|e| UsageError(format!("{e:#}")))?;
        workload
            .verify_subject(question, now)
            .await
            .map_err(UsageError)
    })
}

/// Answers a CheckAccess question on the policy files: the decisions as the endpoint writes
/// them (or, for `explain`, the whole path). Allowed when every operation is.
fn answer_check_access(
    args: &CheckArgs,
    question: CheckAccess,
    explain: bool,
) -> Result<Verdict, UsageError> {
    let now = decision_time(args);
    let question = &verify_subject(args, question, now)?;
    let (snapshot, _) = load(&args.engine)?;
    let answer = if explain {
        let (answer, text) = engine::check_access::explain(&snapshot, question, now);
        print!("{text}");
        answer
    } else {
        let answer = engine::check_access::decide(&snapshot, question, now);
        let bytes = sar::check_access::encode(
            question.actions.iter().zip(&answer.decisions),
            answer.time_to_live_ms(now),
        );
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| UsageError(e.to_string()))?;
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        answer
    };
    Ok(
        if answer
            .decisions
            .iter()
            .all(|d| d.decision == AccessDecision::Allowed)
        {
            Verdict::Allow
        } else {
            Verdict::Deny
        },
    )
}

/// `check` of a SubjectAccessReview body.
fn check_access_review(args: &CheckArgs, body: &[u8]) -> Result<Verdict, UsageError> {
    let source = args.file.as_deref().unwrap_or("-");
    let review = sar::decode(body).map_err(|e| UsageError(format!("`{source}`: {e}")))?;
    let object: Value = serde_json::from_slice(body).map_err(|e| UsageError(e.to_string()))?;
    decide_and_print(args, review.request, object)
}

fn decide_and_print(
    args: &CheckArgs,
    request: AccessRequest,
    mut object: Value,
) -> Result<Verdict, UsageError> {
    let mut request = request;
    request.now = Some(decision_time(args));
    warn_unknown_resource(&request);
    let (snapshot, options) = load(&args.engine)?;
    let decision = engine::authorize(&snapshot, &options, &request);
    if let Value::Object(map) = &mut object {
        map.insert("status".into(), sar::status_value(&decision));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&object).unwrap_or_default()
    );
    Ok(decision.verdict)
}

/// `explain`: prints the decision path; returns the verdict.
pub fn run_explain(args: &CheckArgs) -> Result<Verdict, UsageError> {
    let mut request = if let Some(file) = &args.file {
        let body = read_input(file)?;
        if sar::check_access::is_check_access(&body) {
            let question = check_access_body(args, &body)?;
            return answer_check_access(args, question, true);
        }
        sar::decode(&body)
            .map_err(|e| UsageError(format!("`{file}`: {e}")))?
            .request
    } else if let Some(question) = check_access_flags(args)? {
        return answer_check_access(args, question, true);
    } else {
        read_review(args)?.0
    };
    request.now = Some(decision_time(args));
    warn_unknown_resource(&request);
    let (snapshot, options) = load(&args.engine)?;
    let (decision, text) = explain::explain(&snapshot, &options, &request);
    print!("{text}");
    Ok(decision.verdict)
}

/// `validate`: prints diagnostics; returns the number of errors.
/// Warnings and notes are part of the report (on standard output, after the sizes): each is
/// already a summary (one per role not loaded, one per pair of files with identical copies).
pub fn run_validate(args: &ValidateArgs) -> Result<(), UsageError> {
    let (loaded, _) = load_with_warnings(&args.engine)?;
    let s = loaded.snapshot.stats();
    println!(
        "ok: {} role definitions, {} role assignments, {} deny assignments, {} Kubernetes roles, {} bindings",
        s.role_definitions, s.role_assignments, s.deny_assignments, s.k8s_roles, s.k8s_bindings
    );
    if s.managed_identities + s.federated_credentials + s.service_accounts > 0 {
        println!(
            "workload identity: {} managed identities, {} federated credentials, {} service accounts",
            s.managed_identities, s.federated_credentials, s.service_accounts
        );
    }
    if loaded.snapshot.directory.is_some() {
        println!(
            "directory: {} users, {} groups, {} memberships",
            s.directory_users, s.directory_groups, s.directory_memberships
        );
    }
    for w in &loaded.warnings {
        println!("{w}");
    }
    Ok(())
}
