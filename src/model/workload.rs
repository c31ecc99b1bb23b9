//! A workload identity question: may the pods of a ServiceAccount, exchanging their projected
//! token, reach an Azure principal (spec `identity.md` E4)?

use std::fmt;

/// Which identities a ServiceAccount's pods are taken to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkloadMode {
    /// The identity its `azure.workload.identity/client-id` annotation names (what the
    /// webhook injects).
    #[default]
    Configured,
    /// Every identity with a credential trusting the account, annotation ignored: any pod of
    /// the account can name any client id itself.
    Possible,
}

impl WorkloadMode {
    /// `configured` or `possible`, as a question spells it.
    pub fn parse(text: &str) -> Option<WorkloadMode> {
        match text {
            "configured" => Some(WorkloadMode::Configured),
            "possible" => Some(WorkloadMode::Possible),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadMode::Configured => "configured",
            WorkloadMode::Possible => "possible",
        }
    }
}

/// The ServiceAccount and the token it would present: issuer (the cluster's OIDC issuer)
/// and audience (`api://AzureADTokenExchange`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadQuestion {
    pub namespace: String,
    pub name: String,
    pub issuer: String,
    pub audience: String,
    pub mode: WorkloadMode,
}

/// The audience the Azure workload identity webhook projects tokens for.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Why a ServiceAccount name is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceAccountNameError {
    #[error("`{0}` is not a ServiceAccount: expected `system:serviceaccount:<namespace>:<name>`")]
    NotServiceAccount(String),
    #[error("`{0}` is not a ServiceAccount: expected `<namespace>/<name>`")]
    NotNamespaceName(String),
}

/// `(namespace, name)` of `system:serviceaccount:<namespace>:<name>` (the token's `sub`).
pub fn parse_service_account_user(text: &str) -> Result<(String, String), ServiceAccountNameError> {
    let bad = || ServiceAccountNameError::NotServiceAccount(text.to_string());
    let rest = text
        .strip_prefix("system:serviceaccount:")
        .ok_or_else(bad)?;
    let (namespace, name) = rest.split_once(':').ok_or_else(bad)?;
    if !super::scope::is_dns1123_label(namespace) || name.is_empty() || name.contains(':') {
        return Err(bad());
    }
    Ok((namespace.to_string(), name.to_string()))
}

/// `(namespace, name)` of `<namespace>/<name>` (the `--service-account` flag).
pub fn parse_namespace_name(text: &str) -> Result<(String, String), ServiceAccountNameError> {
    let bad = || ServiceAccountNameError::NotNamespaceName(text.to_string());
    let (namespace, name) = text.split_once('/').ok_or_else(bad)?;
    if namespace.is_empty() || name.is_empty() || name.contains('/') {
        return Err(bad());
    }
    Ok((namespace.to_string(), name.to_string()))
}

impl WorkloadQuestion {
    /// A question about `system:serviceaccount:<ns>:<name>`.
    pub fn from_user(
        service_account: &str,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        mode: WorkloadMode,
    ) -> Result<WorkloadQuestion, ServiceAccountNameError> {
        let (namespace, name) = parse_service_account_user(service_account)?;
        Ok(WorkloadQuestion {
            namespace,
            name,
            issuer: issuer.into(),
            audience: audience.into(),
            mode,
        })
    }

    /// The token's subject: `system:serviceaccount:<ns>:<name>`.
    pub fn subject(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

impl fmt::Display for WorkloadQuestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServiceAccount `{}/{}` (issuer `{}`, audience `{}`, mode {})",
            self.namespace,
            self.name,
            self.issuer,
            self.audience,
            self.mode.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_names_parse_strictly() {
        assert_eq!(
            parse_service_account_user("system:serviceaccount:payments:api"),
            Ok(("payments".into(), "api".into()))
        );
        for bad in [
            "system:serviceaccount:payments",
            "system:serviceaccount::api",
            "system:serviceaccount:payments:",
            "system:serviceaccount:a:b:c",
            "payments:api",
            "system:serviceaccounts:payments",
        ] {
            assert!(parse_service_account_user(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_namespace_name("payments/api"),
            Ok(("payments".into(), "api".into()))
        );
        for bad in ["payments", "/api", "payments/", "a/b/c"] {
            assert!(parse_namespace_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            WorkloadMode::parse("possible"),
            Some(WorkloadMode::Possible)
        );
        assert_eq!(WorkloadMode::parse("Possible"), None);
    }
}
