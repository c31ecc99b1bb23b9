//! From a verified token to the user kube-apiserver is told about: groups from the token or
//! the directory, and the directory's account state (spec `identity.md` B4 steps 12-13, C3).
//! The user borrows from the token and the directory: nothing is copied per review.

use super::error::TokenError;
use super::token::{TokenGroups, VerifiedToken};
use crate::model::GroupsFrom;
use crate::policy::directory::Directory;
use std::sync::Arc;

/// The groups of an authenticated user, wherever they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserGroups<'a> {
    /// The token's `groups` claim.
    Token(&'a [String]),
    /// The directory's transitive membership (lower-case ids).
    Directory(&'a [Arc<str>]),
}

impl<'a> UserGroups<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let (token, directory): (&'a [String], &'a [Arc<str>]) = match *self {
            UserGroups::Token(groups) => (groups, &[]),
            UserGroups::Directory(groups) => (&[], groups),
        };
        token
            .iter()
            .map(String::as_str)
            .chain(directory.iter().map(|g| &**g))
    }

    pub fn len(&self) -> usize {
        match self {
            UserGroups::Token(groups) => groups.len(),
            UserGroups::Directory(groups) => groups.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An authenticated user, in TokenReview's terms: `username`, `uid` (= `oid`), `groups`,
/// `extra` `oid` and `tid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser<'a> {
    pub token: &'a VerifiedToken,
    pub groups: UserGroups<'a>,
    /// Something an operator should know (overage without a directory, …); not an error.
    pub warning: Option<GroupsWarning>,
}

impl AuthenticatedUser<'_> {
    pub fn username(&self) -> &str {
        &self.token.username
    }

    pub fn oid(&self) -> &str {
        &self.token.oid
    }

    pub fn tid(&self) -> Option<&str> {
        self.token.tid.as_deref()
    }
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
pub fn resolve<'a>(
    token: &'a VerifiedToken,
    directory: Option<&'a Directory>,
    groups_from: GroupsFrom,
) -> Result<AuthenticatedUser<'a>, TokenError> {
    let oid = token.oid.as_str();
    if let Some(d) = directory
        && d.account_enabled(oid) == Some(false)
    {
        return Err(TokenError::AccountDisabled(token.oid.clone()));
    }
    let from_directory = || match directory {
        None => (UserGroups::Token(&[]), Some(GroupsWarning::NoDirectory)),
        Some(d) => match d.member_of(oid) {
            Some(groups) => (UserGroups::Directory(groups), None),
            None => (
                UserGroups::Token(&[]),
                Some(GroupsWarning::UnknownToDirectory),
            ),
        },
    };
    let (groups, warning) = match (groups_from, &token.groups) {
        (GroupsFrom::Directory, _) => from_directory(),
        (GroupsFrom::Token, TokenGroups::Listed(groups)) => (UserGroups::Token(groups), None),
        (GroupsFrom::Token, TokenGroups::Overage) => from_directory(),
        (GroupsFrom::Token, TokenGroups::Absent) => (UserGroups::Token(&[]), None),
    };
    Ok(AuthenticatedUser {
        token,
        groups,
        warning,
    })
}
