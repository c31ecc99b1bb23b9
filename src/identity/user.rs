//! From a verified token to the user kube-apiserver is told about: groups from the token or
//! the directory, and the directory's account state (spec `identity.md` B4 steps 12-13, C3).

use super::error::TokenError;
use super::token::{GroupsFrom, TokenGroups, VerifiedToken};
use crate::policy::directory::Directory;

/// An authenticated user, in TokenReview's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub oid: String,
    pub tid: Option<String>,
    /// Something an operator should know (overage without a directory, …); not an error.
    pub warning: Option<GroupsWarning>,
}

/// Why a user was authenticated with fewer groups than it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupsWarning {
    /// The groups must come from the directory (overage marker, or `--groups-from
    /// directory`) and none is loaded.
    NoDirectory,
    /// The directory does not know the principal (overage or `--groups-from directory`).
    UnknownToDirectory,
}

impl GroupsWarning {
    pub fn message(self) -> &'static str {
        match self {
            GroupsWarning::NoDirectory => {
                "the groups must come from the directory snapshot (overage marker or --groups-from directory) and none is loaded: authenticated with no groups"
            }
            GroupsWarning::UnknownToDirectory => {
                "the directory snapshot does not know this principal: authenticated with no groups"
            }
        }
    }

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            GroupsWarning::NoDirectory => "no_directory",
            GroupsWarning::UnknownToDirectory => "unknown_to_directory",
        }
    }
}

/// Applies the directory to a verified token.
pub fn resolve(
    token: &VerifiedToken,
    directory: Option<&Directory>,
    groups_from: GroupsFrom,
) -> Result<AuthenticatedUser, TokenError> {
    let oid_key = token.oid.to_ascii_lowercase();
    let from_directory = |directory: Option<&Directory>| match directory {
        None => (Vec::new(), Some(GroupsWarning::NoDirectory)),
        Some(d) => match d.member_of(&oid_key) {
            Some(groups) => (groups.iter().map(|g| g.to_string()).collect(), None),
            None => (Vec::new(), Some(GroupsWarning::UnknownToDirectory)),
        },
    };
    let (groups, warning) = match (groups_from, &token.groups) {
        (GroupsFrom::Directory, _) => from_directory(directory),
        (GroupsFrom::Token, TokenGroups::Listed(groups)) => (groups.clone(), None),
        (GroupsFrom::Token, TokenGroups::Overage) => from_directory(directory),
        (GroupsFrom::Token, TokenGroups::Absent) => (Vec::new(), None),
    };
    if let Some(d) = directory
        && d.account_enabled(&oid_key) == Some(false)
    {
        return Err(TokenError::AccountDisabled(token.oid.clone()));
    }
    Ok(AuthenticatedUser {
        username: token.username.clone(),
        uid: token.oid.clone(),
        groups,
        oid: token.oid.clone(),
        tid: token.tid.clone(),
        warning,
    })
}
