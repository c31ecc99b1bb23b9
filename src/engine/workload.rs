//! The workload identity chain (spec `identity.md` E4): a ServiceAccount, the managed
//! identity its pods obtain a token for, the federated credential that lets them, and the
//! principal ids whose role assignments then decide. Pure: it reads the snapshot only, and
//! evaluates no role assignment.
//!
//! ```text
//! configured: ServiceAccount --client-id annotation--> identity --credential matches--> principalId
//! possible:   ServiceAccount --every credential trusting its subject--> identities --> principalIds
//! ```

use crate::model::workload::{WorkloadMode, WorkloadQuestion};
use crate::policy::Snapshot;
use crate::policy::workload::{
    CLIENT_ID_ANNOTATION, FederatedCredential, ManagedIdentity, TENANT_ID_ANNOTATION, WorkloadIndex,
};
use std::fmt;
use std::sync::Arc;

/// A resolved chain: the identities the ServiceAccount's pods can act as, borrowed from the
/// snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadChain<'s> {
    pub mode: WorkloadMode,
    /// One per identity, in load order; never empty. Configured mode has exactly one.
    pub links: Vec<IdentityLink<'s>>,
}

/// One identity the ServiceAccount reaches, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityLink<'s> {
    pub identity: &'s ManagedIdentity,
    /// The credential whose issuer, subject and audience matched the question.
    pub credential: &'s FederatedCredential,
}

impl IdentityLink<'_> {
    /// The principals to evaluate for this identity: its `principalId` and, when the
    /// directory lists it, its transitive groups (sorted, no repeats).
    pub fn principals(&self, snapshot: &Snapshot) -> smallvec::SmallVec<[uuid::Uuid; 8]> {
        super::check_access::principal_set(snapshot, self.identity.principal_id, &[])
    }
}

/// The part of a federated credential that differs from the question's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialPart {
    Issuer,
    Subject,
    Audience,
}

impl CredentialPart {
    fn as_str(self) -> &'static str {
        match self {
            CredentialPart::Issuer => "issuer",
            CredentialPart::Subject => "subject",
            CredentialPart::Audience => "audience",
        }
    }
}

/// Why two texts differ, when it is one of the common mistakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Near {
    /// Equal ignoring case: Entra compares case-sensitively since August 2024.
    CaseOnly,
    /// Equal but for a trailing `/` (an AKS issuer ends with one).
    TrailingSlash,
}

/// The credential closest to matching, and its first part that does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearestCredential {
    pub credential: Arc<str>,
    pub part: CredentialPart,
    /// What the credential holds for that part (its audiences joined by `, `).
    pub expected: String,
    /// What the question's token carries.
    pub found: String,
    pub near: Option<Near>,
}

/// The link of the chain that broke: the ServiceAccount reaches no identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokenLink {
    /// No ServiceAccount with that namespace and name is loaded.
    ServiceAccountNotFound { namespace: String, name: String },
    /// Configured mode: the ServiceAccount has no `client-id` annotation.
    NoClientIdAnnotation { namespace: String, name: String },
    /// Configured mode: no loaded identity has the annotation's client id.
    UnknownClientId { client_id: String },
    /// Configured mode: the `tenant-id` annotation is not the identity's tenant.
    TenantMismatch {
        annotation: String,
        identity: String,
        identity_tenant: String,
    },
    /// Configured mode: no credential of the identity matches the token.
    NoMatchingCredential {
        identity: String,
        subject: String,
        /// `None` when the identity has no credentials at all.
        nearest: Option<NearestCredential>,
    },
    /// Possible mode: no identity has a credential trusting the token.
    NoTrustingIdentity {
        subject: String,
        /// A credential of some identity whose subject matches but for case, or matches
        /// while its issuer or audience do not.
        nearest: Option<(String, NearestCredential)>,
    },
}

impl fmt::Display for NearestCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = self.part.as_str();
        let noun = if self.part == CredentialPart::Audience {
            "audiences"
        } else {
            part
        };
        write!(
            f,
            "credential `{}` has {noun} `{}`, the token's {part} is `{}`",
            self.credential, self.expected, self.found
        )?;
        match self.near {
            Some(Near::CaseOnly) => {
                f.write_str(" (they differ only in case: Entra compares them case-sensitively)")
            }
            Some(Near::TrailingSlash) => {
                f.write_str(" (they differ only in a trailing `/`, which must match exactly)")
            }
            None => Ok(()),
        }
    }
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokenLink::ServiceAccountNotFound { namespace, name } => {
                write!(
                    f,
                    "service account `{namespace}/{name}` is not in the policy (neither the files nor, with the live source, the cluster)"
                )
            }
            BrokenLink::NoClientIdAnnotation { namespace, name } => write!(
                f,
                "service account `{namespace}/{name}` has no `{CLIENT_ID_ANNOTATION}` annotation"
            ),
            BrokenLink::UnknownClientId { client_id } => write!(
                f,
                "no managed identity has client id `{client_id}` (the `{CLIENT_ID_ANNOTATION}` \
                 annotation)"
            ),
            BrokenLink::TenantMismatch {
                annotation,
                identity,
                identity_tenant,
            } => write!(
                f,
                "the `{TENANT_ID_ANNOTATION}` annotation is `{annotation}` but managed identity \
                 `{identity}` is in tenant `{identity_tenant}`"
            ),
            BrokenLink::NoMatchingCredential {
                identity,
                subject,
                nearest: None,
            } => write!(
                f,
                "managed identity `{identity}` has no federated credential, so `{subject}` \
                 cannot use it"
            ),
            BrokenLink::NoMatchingCredential {
                identity,
                subject,
                nearest: Some(nearest),
            } => write!(
                f,
                "no federated credential of managed identity `{identity}` matches `{subject}`: \
                 {nearest}"
            ),
            BrokenLink::NoTrustingIdentity {
                subject,
                nearest: None,
            } => write!(
                f,
                "no managed identity has a federated credential trusting `{subject}` with this \
                 issuer and audience"
            ),
            BrokenLink::NoTrustingIdentity {
                subject,
                nearest: Some((identity, nearest)),
            } => write!(
                f,
                "no managed identity has a federated credential trusting `{subject}` with this \
                 issuer and audience; nearest, on managed identity `{identity}`: {nearest}"
            ),
        }
    }
}

impl std::error::Error for BrokenLink {}

/// Resolves the chain of `question` on `snapshot` (spec `identity.md` E4, steps 1–4).
pub fn resolve<'s>(
    snapshot: &'s Snapshot,
    question: &WorkloadQuestion,
) -> Result<WorkloadChain<'s>, BrokenLink> {
    let index: &WorkloadIndex = &snapshot.workload;
    let Some(account) = index.service_account(&question.namespace, &question.name) else {
        return Err(BrokenLink::ServiceAccountNotFound {
            namespace: question.namespace.clone(),
            name: question.name.clone(),
        });
    };
    let subject = question.subject();
    let link = |identity, credential| IdentityLink {
        identity,
        credential,
    };
    let links = match question.mode {
        WorkloadMode::Configured => {
            let Some(client_id) = &account.client_id else {
                return Err(BrokenLink::NoClientIdAnnotation {
                    namespace: question.namespace.clone(),
                    name: question.name.clone(),
                });
            };
            let Some(identity) = index.identity_by_client_id(client_id) else {
                return Err(BrokenLink::UnknownClientId {
                    client_id: client_id.to_string(),
                });
            };
            check_tenant(account.tenant_id.as_deref(), identity)?;
            let credentials = || index.credentials_of(identity);
            let matched =
                credentials().find(|c| c.trusts(&question.issuer, &subject, &question.audience));
            match matched {
                Some(credential) => vec![link(identity, credential)],
                None => {
                    return Err(BrokenLink::NoMatchingCredential {
                        identity: identity.name_or_id().to_string(),
                        nearest: nearest(credentials(), question, &subject),
                        subject,
                    });
                }
            }
        }
        WorkloadMode::Possible => {
            let mut links: Vec<IdentityLink> = Vec::new();
            for (identity, credential) in
                index.trusting(&question.issuer, &subject, &question.audience)
            {
                // One link per identity: the first credential that matched.
                if !links.iter().any(|l| l.identity.id == identity.id) {
                    links.push(link(identity, credential));
                }
            }
            if links.is_empty() {
                return Err(BrokenLink::NoTrustingIdentity {
                    nearest: nearest_anywhere(index, question, &subject),
                    subject,
                });
            }
            links
        }
    };
    Ok(WorkloadChain {
        mode: question.mode,
        links,
    })
}

/// The `tenant-id` annotation, when present, must name the identity's tenant (when known).
fn check_tenant(annotation: Option<&str>, identity: &ManagedIdentity) -> Result<(), BrokenLink> {
    let (Some(annotation), Some(tenant)) = (annotation, identity.tenant_id) else {
        return Ok(());
    };
    let same = uuid::Uuid::try_parse(annotation.trim()).is_ok_and(|a| a == tenant);
    if same {
        return Ok(());
    }
    Err(BrokenLink::TenantMismatch {
        annotation: annotation.to_string(),
        identity: identity.name_or_id().to_string(),
        identity_tenant: tenant.to_string(),
    })
}

/// How close `credential` is to the question's token: its parts that match exactly, and the
/// first that does not.
fn compare(
    credential: &FederatedCredential,
    question: &WorkloadQuestion,
    subject: &str,
) -> (usize, Option<NearestCredential>) {
    let audiences = credential
        .audiences
        .iter()
        .map(|a| &**a)
        .collect::<Vec<_>>()
        .join(", ");
    let parts = [
        (
            CredentialPart::Issuer,
            *credential.issuer == *question.issuer,
            credential.issuer.to_string(),
            question.issuer.as_str(),
        ),
        (
            CredentialPart::Subject,
            *credential.subject == *subject,
            credential.subject.to_string(),
            subject,
        ),
        (
            CredentialPart::Audience,
            credential
                .audiences
                .iter()
                .any(|a| **a == *question.audience),
            audiences,
            question.audience.as_str(),
        ),
    ];
    let matching = parts.iter().filter(|p| p.1).count();
    let first = parts
        .into_iter()
        .find(|p| !p.1)
        .map(|(part, _, expected, found)| {
            let near = if part == CredentialPart::Audience {
                credential.audiences.iter().find_map(|a| near(a, found))
            } else {
                near(&expected, found)
            };
            NearestCredential {
                credential: credential.name.clone(),
                part,
                expected,
                found: found.to_string(),
                near,
            }
        });
    (matching, first)
}

/// Whether two different texts are one of the common near misses.
fn near(expected: &str, found: &str) -> Option<Near> {
    if expected.eq_ignore_ascii_case(found) {
        Some(Near::CaseOnly)
    } else if expected.trim_end_matches('/') == found.trim_end_matches('/') {
        Some(Near::TrailingSlash)
    } else {
        None
    }
}

/// The credential among `credentials` with the most parts matching (the first of those).
fn nearest<'a>(
    credentials: impl Iterator<Item = &'a FederatedCredential>,
    question: &WorkloadQuestion,
    subject: &str,
) -> Option<NearestCredential> {
    let mut best: Option<(usize, NearestCredential)> = None;
    for credential in credentials {
        let (score, mismatch) = compare(credential, question, subject);
        if let Some(mismatch) = mismatch
            && best.as_ref().is_none_or(|(s, _)| score > *s)
        {
            best = Some((score, mismatch));
        }
    }
    best.map(|(_, m)| m)
}

/// In possible mode, the nearest credential of any identity among those whose subject is
/// the question's (or is but for case): a credential meant for this ServiceAccount.
fn nearest_anywhere(
    index: &WorkloadIndex,
    question: &WorkloadQuestion,
    subject: &str,
) -> Option<(String, NearestCredential)> {
    let mut best: Option<(usize, String, NearestCredential)> = None;
    for identity in index.identities() {
        for credential in index.credentials_of(identity) {
            if !credential.subject.eq_ignore_ascii_case(subject) {
                continue;
            }
            let (score, mismatch) = compare(credential, question, subject);
            if let Some(mismatch) = mismatch
                && best.as_ref().is_none_or(|(s, _, _)| score > *s)
            {
                best = Some((score, identity.name_or_id().to_string(), mismatch));
            }
        }
    }
    best.map(|(_, identity, m)| (identity, m))
}

#[cfg(test)]
mod tests;
