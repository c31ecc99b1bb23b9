//! Loopback stand-ins for the services `scopegate sync` calls, over real HTTPS, each on its
//! own port and answering in the documented shapes:
//! - the Entra token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client credentials grant
//!   with a client assertion or secret; OAuth error bodies);
//! - Azure Resource Manager (`GET {scope}/providers/Microsoft.Authorization/{kind}` lists at,
//!   above and below a scope, `POST /providers/Microsoft.Management/getEntities`; `value` +
//!   `nextLink` pages; 429 with `Retry-After`, 503, 401 `ExpiredAuthenticationToken`,
//!   `x-ms-ratelimit-remaining-subscription-reads`);
//! - Microsoft Graph delta queries (`/v1.0/users/delta`, `/v1.0/groups/delta` with
//!   `members@delta`; `@odata.nextLink` pages, `@odata.deltaLink`, `@removed`, 410 Gone for
//!   an expired delta token).
//!
//! Everything they are asked is logged for the test to inspect. Nothing here calls scopegate.
#![allow(dead_code)]

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "9c1c1a6e-0b7e-4b8e-9f1e-5a0f0c1d2e3f";

/// One request as a service saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub service: &'static str,
    pub method: Method,
    /// Path and query, percent-decoded.
    pub target: String,
    pub bearer: Option<String>,
    pub at: Instant,
    pub status: u16,
}

/// The directory at one point in time.
#[derive(Debug, Clone, Default)]
pub struct DirectoryVersion {
    pub users: BTreeMap<String, Value>,
    /// Group id -> (properties, members as (`@odata.type`, id)).
    pub groups: BTreeMap<String, (Value, BTreeSet<(String, String)>)>,
}

/// What the services hold and how they misbehave.
#[derive(Debug, Default)]
pub struct World {
    /// The client assertion (projected ServiceAccount token) the token endpoint accepts.
    pub federated_token: String,
    /// Or a client secret.
    pub client_secret: Option<String>,
    /// Or a client assertion signed by a certificate's key: (public key PEM, its SHA-1
    /// thumbprint as `x5t`).
    pub certificate: Option<(Vec<u8>, String)>,
    /// Token lifetime in seconds.
    pub expires_in: u64,
    /// Access tokens issued, with the scope each is for; removed when they "expire".
    pub valid_tokens: HashMap<String, String>,
    pub tokens_issued: usize,
    pub role_definitions: Vec<Value>,
    pub role_assignments: Vec<Value>,
    pub deny_assignments: Vec<Value>,
    pub assignment_instances: Vec<Value>,
    pub eligibility_instances: Vec<Value>,
    pub entities: Vec<Value>,
    /// Objects per ARM page.
    pub page_size: usize,
    /// The next N ARM calls answer 429 with `Retry-After: retry_after`.
    pub throttle_next: usize,
    pub retry_after: String,
    /// The next N ARM calls answer 503.
    pub unavailable_next: usize,
    /// After this many more ARM calls, every token issued so far expires.
    pub expire_tokens_after: Option<usize>,
    /// Resource Manager refuses every token, new ones too (a revoked identity).
    pub refuse_all_tokens: bool,
    /// `x-ms-ratelimit-remaining-subscription-reads` on ARM answers.
    pub remaining_reads: Option<u64>,
    /// Graph: each published version of the directory; a delta token is an index.
    pub versions: Vec<DirectoryVersion>,
    /// Graph: delta tokens older than this answer 410 Gone.
    pub oldest_delta_token: usize,
    /// Objects per Graph page.
    pub graph_page_size: usize,
    /// Graph rounds served: (kind, items), by skip token.
    rounds: Vec<Vec<Value>>,
    round_versions: Vec<usize>,
    pub log: Vec<Logged>,
}

pub struct FakeAzure {
    pub world: Arc<Mutex<World>>,
    pub token_origin: String,
    pub arm_origin: String,
    pub graph_origin: String,
    pub ca_file: PathBuf,
    pub token_file: PathBuf,
    dir: tempfile::TempDir,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeAzure {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl FakeAzure {
    pub async fn start() -> FakeAzure {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, server_cert, server_key) = certificates();
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let token_file = dir.path().join("azure-identity-token");
        let federated = "eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig";
        std::fs::write(&token_file, format!("{federated}\n")).unwrap();
        let world = Arc::new(Mutex::new(World {
            federated_token: federated.into(),
            expires_in: 3599,
            page_size: 100,
            graph_page_size: 100,
            retry_after: "1".into(),
            versions: vec![DirectoryVersion::default()],
            ..World::default()
        }));
        let certs: Vec<_> =
            rustls_pki_types::CertificateDer::pem_slice_iter(server_cert.as_bytes())
                .map(Result::unwrap)
                .collect();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(server_key.as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let mut tasks = Vec::new();
        let mut origins = Vec::new();
        for service in ["token", "arm", "graph"] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let origin = format!(
                "https://127.0.0.1:{}",
                listener.local_addr().unwrap().port()
            );
            origins.push(origin.clone());
            let app =
                axum::Router::new()
                    .fallback(handle)
                    .with_state((service, world.clone(), origin));
            let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let acceptor = acceptor.clone();
                    let app = app.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let service = hyper_util::service::TowerToHyperService::new(app);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                            .await;
                    });
                }
            }));
        }
        FakeAzure {
            world,
            token_origin: origins[0].clone(),
            arm_origin: origins[1].clone(),
            graph_origin: origins[2].clone(),
            ca_file,
            token_file,
            dir,
            tasks,
        }
    }

    /// A sync config for these services: workload identity from the environment the test
    /// hands the syncer, output in `output`.
    pub fn config(&self, output: &std::path::Path, scopes: &[&str], graph: bool) -> String {
        let mut text = format!(
            "output: {}\ncaFile: {}\nretry:\n  baseDelay: 20ms\n  maxDelay: 100ms\n  rateLimitPause: 300ms\n",
            output.display(),
            self.ca_file.display()
        );
        if !scopes.is_empty() {
            text.push_str(&format!(
                "arm:\n  endpoint: {}\n  scopes:\n",
                self.arm_origin
            ));
            for s in scopes {
                text.push_str(&format!("    - {s}\n"));
            }
        }
        if graph {
            text.push_str(&format!("graph:\n  endpoint: {}\n", self.graph_origin));
        }
        text
    }

    /// The variables the workload identity webhook injects.
    pub fn env(&self) -> impl Fn(&str) -> Option<String> + use<> {
        let vars = [
            ("AZURE_TENANT_ID", TENANT.to_string()),
            ("AZURE_CLIENT_ID", CLIENT_ID.to_string()),
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                self.token_file.display().to_string(),
            ),
            ("AZURE_AUTHORITY_HOST", format!("{}/", self.token_origin)),
        ];
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    pub fn log(&self) -> Vec<Logged> {
        self.world.lock().unwrap().log.clone()
    }

    /// The calls one service (`token`, `arm`, `graph`) was asked, in order.
    pub fn calls(&self, service: &str) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| l.service == service)
            .collect()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.world.lock().unwrap())
    }
}

/// A CA (PEM) and a server certificate and key it signed for 127.0.0.1 and localhost.
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    (ca_cert.pem(), server_cert.pem(), server_key.serialize_pem())
}

type AppState = (&'static str, Arc<Mutex<World>>, String);

async fn handle(State((service, world, origin)): State<AppState>, request: Request) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let target = percent_decode(&uri.to_string());
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(String::from);
    let mut w = world.lock().unwrap();
    let response = match service {
        "token" => token(&mut w, &origin, &method, uri.path(), &body),
        "arm" => arm(&mut w, &origin, &method, &uri, bearer.as_deref()),
        _ => graph(&mut w, &origin, &uri, bearer.as_deref()),
    };
    w.log.push(Logged {
        service,
        method,
        target,
        bearer,
        at: Instant::now(),
        status: response.status().as_u16(),
    });
    response
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, json!({"error": {"code": code, "message": message}}))
}

/// The client credentials grant (Microsoft identity platform, v2.0 token endpoint).
fn token(w: &mut World, origin: &str, method: &Method, path: &str, body: &[u8]) -> Response {
    let oauth = |code: &str, description: &str| {
        reply(
            StatusCode::BAD_REQUEST,
            json!({"error": code, "error_description": description, "error_codes": [1], "trace_id": "t"}),
        )
    };
    if method != Method::POST || path != format!("/{TENANT}/oauth2/v2.0/token") {
        return oauth(
            "invalid_request",
            "AADSTS900561: The endpoint only accepts POST requests.",
        );
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        return oauth(
            "unsupported_grant_type",
            "AADSTS70003: unsupported grant type",
        );
    }
    if field("client_id") != CLIENT_ID {
        return oauth(
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory",
        );
    }
    let scope = field("scope");
    if !scope.ends_with("/.default") {
        return oauth(
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid",
        );
    }
    let proved = match (field("client_assertion_type"), &w.client_secret) {
        ("urn:ietf:params:oauth:client-assertion-type:jwt-bearer", _) => {
            let assertion = field("client_assertion");
            assertion == w.federated_token
                || w.certificate.as_ref().is_some_and(|(public, x5t)| {
                    certificate_assertion_valid(assertion, public, x5t, &format!("{origin}{path}"))
                })
        }
        ("", Some(secret)) => field("client_secret") == secret,
        _ => false,
    };
    if !proved {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": "AADSTS700213: No matching federated identity record found for presented assertion subject.\r\nTrace ID: x"}),
        );
    }
    w.tokens_issued += 1;
    let access = format!("access-{}", w.tokens_issued);
    w.valid_tokens.insert(access.clone(), scope.to_string());
    reply(
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": w.expires_in, "ext_expires_in": w.expires_in, "access_token": access}),
    )
}

/// A certificate credential's assertion, as Entra checks it: RS256 signed by the registered
/// certificate's key, `x5t` its thumbprint, audience the token endpoint, issuer and subject the
/// client id, not expired.
fn certificate_assertion_valid(assertion: &str, public: &[u8], x5t: &str, endpoint: &str) -> bool {
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return false;
    };
    if header.x5t.as_deref() != Some(x5t) || header.alg != jsonwebtoken::Algorithm::RS256 {
        return false;
    }
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(public) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[endpoint]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(data) => data.claims["sub"] == CLIENT_ID && data.claims["jti"].is_string(),
        Err(_) => false,
    }
}

/// The scopes of the list's `scope` relation: `object` is at, above or below `asked`.
fn related(object_scope: &str, asked: &str) -> bool {
    let (o, a) = (
        object_scope.to_ascii_lowercase(),
        asked.to_ascii_lowercase(),
    );
    let within = |inner: &str, outer: &str| {
        outer == "/" || inner == outer || inner.starts_with(&format!("{outer}/"))
    };
    // Management group scopes are above every subscription of the (single) tree here.
    within(&a, &o) || within(&o, &a) || o.starts_with("/providers/microsoft.management/")
}

fn scope_of(object: &Value) -> &str {
    object["properties"]["scope"].as_str().unwrap_or("/")
}

fn arm(
    w: &mut World,
    origin: &str,
    method: &Method,
    uri: &axum::http::Uri,
    bearer: Option<&str>,
) -> Response {
    let arm_scope = format!("{origin}/.default");
    if let Some(n) = w.expire_tokens_after.as_mut() {
        if *n == 0 {
            w.valid_tokens.clear();
            w.expire_tokens_after = None;
        } else {
            *n -= 1;
        }
    }
    match bearer {
        // The same server is also reached as `localhost`: tokens for either name are its own.
        Some(t)
            if !w.refuse_all_tokens
                && w.valid_tokens.get(t).is_some_and(|scope| {
                    *scope == arm_scope || *scope == arm_scope.replace("127.0.0.1", "localhost")
                }) => {}
        Some(_) => {
            let mut r = arm_error(
                StatusCode::UNAUTHORIZED,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
            );
            r.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\""),
            );
            return r;
        }
        None => {
            return arm_error(
                StatusCode::UNAUTHORIZED,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            );
        }
    }
    if w.throttle_next > 0 {
        w.throttle_next -= 1;
        let mut r = arm_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "The request is being throttled.",
        );
        r.headers_mut().insert(
            "retry-after",
            HeaderValue::from_str(&w.retry_after).unwrap(),
        );
        return r;
    }
    if w.unavailable_next > 0 {
        w.unavailable_next -= 1;
        return arm_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        );
    }
    let query: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let path = uri.path();
    let (objects, version): (Vec<Value>, &str) = if path
        .eq_ignore_ascii_case("/providers/Microsoft.Management/getEntities")
    {
        // A POST operation, its nextLink pages too (GET answers 405, as Resource Manager does).
        if *method != Method::POST {
            return arm_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The requested resource does not support http method 'GET'.",
            );
        }
        (w.entities.clone(), "2020-05-01")
    } else {
        let Some((scope, kind)) = path.rsplit_once("/providers/Microsoft.Authorization/") else {
            return arm_error(StatusCode::NOT_FOUND, "InvalidResourceType", "not found");
        };
        let scope = if scope.is_empty() { "/" } else { scope };
        let pick = |list: &Vec<Value>| -> Vec<Value> {
            list.iter()
                .filter(|o| related(scope_of(o), scope))
                .cloned()
                .collect()
        };
        match kind {
            "roleDefinitions" => {
                let custom_only =
                    query.get("$filter").map(String::as_str) == Some("type eq 'CustomRole'");
                let sub = scope
                    .strip_prefix("/subscriptions/")
                    .map(|rest| rest.split('/').next().unwrap_or_default().to_string());
                let defs = w
                    .role_definitions
                    .iter()
                    .filter(|d| !custom_only || d["properties"]["type"] == "CustomRole")
                    .map(|d| {
                        // ARM names each role under the subscription it is listed at.
                        let mut d = d.clone();
                        if let Some(sub) = &sub {
                            let name = d["name"].as_str().unwrap_or_default().to_string();
                            d["id"] = json!(format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{name}"));
                        }
                        d
                    })
                    .collect();
                (defs, "2022-04-01")
            }
            "roleAssignments" => (pick(&w.role_assignments), "2022-04-01"),
            "denyAssignments" => (pick(&w.deny_assignments), "2022-04-01"),
            "roleAssignmentScheduleInstances" => (pick(&w.assignment_instances), "2020-10-01"),
            "roleEligibilityScheduleInstances" => (pick(&w.eligibility_instances), "2020-10-01"),
            _ => return arm_error(StatusCode::NOT_FOUND, "InvalidResourceType", "not found"),
        }
    };
    if query.get("api-version").map(String::as_str) != Some(version) {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            "The api-version is invalid.",
        );
    }
    let skip: usize = query
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let size = w.page_size.max(1);
    let page: Vec<Value> = objects.iter().skip(skip).take(size).cloned().collect();
    let mut body = json!({ "value": page });
    if skip + size < objects.len() {
        let mut next = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query {
            if k != "$skiptoken" {
                next.append_pair(k, v);
            }
        }
        next.append_pair("$skiptoken", &(skip + size).to_string());
        body["nextLink"] = json!(format!("{origin}{path}?{}", next.finish()));
    }
    let mut r = reply(StatusCode::OK, body);
    if let Some(n) = w.remaining_reads {
        r.headers_mut().insert(
            "x-ms-ratelimit-remaining-subscription-reads",
            HeaderValue::from_str(&n.to_string()).unwrap(),
        );
    }
    r
}

/// A delta round: every change from version `from` (none: the empty directory) to the
/// newest, users or groups.
fn changes(w: &World, kind: &str, from: Option<usize>) -> Vec<Value> {
    let empty = DirectoryVersion::default();
    let old = from.and_then(|v| w.versions.get(v)).unwrap_or(&empty);
    let new = w.versions.last().unwrap();
    let mut items = Vec::new();
    if kind == "users" {
        for (id, user) in &new.users {
            if old.users.get(id) != Some(user) {
                items.push(user.clone());
            }
        }
        for id in old.users.keys().filter(|id| !new.users.contains_key(*id)) {
            items.push(json!({"id": id, "@removed": {"reason": "changed"}}));
        }
        return items;
    }
    for (id, (props, members)) in &new.groups {
        let (old_props, old_members) = old
            .groups
            .get(id)
            .map(|(p, m)| (Some(p), m.clone()))
            .unwrap_or((None, BTreeSet::new()));
        let mut delta: Vec<Value> = members
            .difference(&old_members)
            .map(|(t, m)| json!({"@odata.type": t, "id": m}))
            .collect();
        delta.extend(
            old_members.difference(members).map(
                |(t, m)| json!({"@odata.type": t, "id": m, "@removed": {"reason": "deleted"}}),
            ),
        );
        if old_props == Some(props) && delta.is_empty() {
            continue;
        }
        // A group with many member changes comes in two parts, as Graph splits them over
        // pages: the second carries only its id and the rest of the members.
        let mut first = props.clone();
        let rest = if delta.len() > 2 {
            delta.split_off(delta.len() / 2)
        } else {
            Vec::new()
        };
        first["members@delta"] = json!(delta);
        items.push(first);
        if !rest.is_empty() {
            items.push(json!({"id": id, "members@delta": rest}));
        }
    }
    for id in old.groups.keys().filter(|id| !new.groups.contains_key(*id)) {
        items.push(json!({"id": id, "@removed": {"reason": "deleted"}}));
    }
    items
}

fn graph(w: &mut World, origin: &str, uri: &axum::http::Uri, bearer: Option<&str>) -> Response {
    let graph_scope = format!("{origin}/.default");
    if bearer.is_none_or(|t| w.valid_tokens.get(t) != Some(&graph_scope)) {
        return arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        );
    }
    let kind = match uri.path() {
        "/v1.0/users/delta" => "users",
        "/v1.0/groups/delta" => "groups",
        _ => {
            return arm_error(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                "not found",
            );
        }
    };
    let query: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let (round, offset) = if let Some(skip) = query.get("$skiptoken") {
        let (r, o) = skip.split_once(':').unwrap_or(("x", "x"));
        match (r.parse::<usize>(), o.parse::<usize>()) {
            (Ok(r), Ok(o)) if r < w.rounds.len() => (r, o),
            _ => return arm_error(StatusCode::BAD_REQUEST, "BadRequest", "bad skip token"),
        }
    } else {
        let from = match query.get("$deltatoken") {
            Some(t) => match t.parse::<usize>() {
                Ok(v) if v >= w.oldest_delta_token && v < w.versions.len() => Some(v),
                _ => {
                    return arm_error(
                        StatusCode::GONE,
                        "syncStateNotFound",
                        "The sync state generated by the delta token is not available anymore.",
                    );
                }
            },
            None => {
                let select = query.get("$select").cloned().unwrap_or_default();
                let needed: &[&str] = if kind == "users" {
                    &["id", "accountEnabled"]
                } else {
                    &["id", "members"]
                };
                if needed.iter().any(|n| !select.split(',').any(|s| s == *n)) {
                    return arm_error(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "this fake wants $select",
                    );
                }
                None
            }
        };
        let items = changes(w, kind, from);
        w.rounds.push(items);
        w.round_versions.push(w.versions.len() - 1);
        (w.rounds.len() - 1, 0)
    };
    let items = &w.rounds[round];
    let size = w.graph_page_size.max(1);
    let page: Vec<Value> = items.iter().skip(offset).take(size).cloned().collect();
    let mut body = json!({
        "@odata.context": format!("{origin}/v1.0/$metadata#{kind}(id)"),
        "value": page,
    });
    if offset + size < items.len() {
        body["@odata.nextLink"] = json!(format!(
            "{origin}/v1.0/{kind}/delta?$skiptoken={round}:{}",
            offset + size
        ));
    } else {
        body["@odata.deltaLink"] = json!(format!(
            "{origin}/v1.0/{kind}/delta?$deltatoken={}",
            w.round_versions[round]
        ));
    }
    reply(StatusCode::OK, body)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .to_string()
}
