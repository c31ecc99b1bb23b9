//! Interned scopes: a million assignments name a few thousand scopes, so each scope is parsed
//! and stored once and assignments keep a 4-byte id.

use crate::model::Scope;
use std::collections::HashMap;

/// Interned scope id.
pub type ScopeId = u32;

/// Scopes by canonical key, and back by id.
#[derive(Debug, Clone, Default)]
pub struct ScopeTable {
    ids: HashMap<String, ScopeId>,
    scopes: Vec<Scope>,
}

impl ScopeTable {
    /// The id of `scope`, adding it if new.
    pub fn intern(&mut self, scope: Scope) -> ScopeId {
        if let Some(id) = self.ids.get(scope.key()) {
            return *id;
        }
        let id = ScopeId::try_from(self.scopes.len()).unwrap_or(ScopeId::MAX);
        self.ids.insert(scope.key().to_string(), id);
        self.scopes.push(scope);
        id
    }

    /// The id of the scope with this canonical key, if interned.
    pub fn id(&self, key: &str) -> Option<ScopeId> {
        self.ids.get(key).copied()
    }

    pub fn get(&self, id: ScopeId) -> Option<&Scope> {
        self.scopes.get(id as usize)
    }

    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// Every interned scope with its id.
    pub fn iter(&self) -> impl Iterator<Item = (ScopeId, &Scope)> {
        (0..).zip(&self.scopes)
    }
}
