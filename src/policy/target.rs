//! A request's Azure actions resolved against one snapshot's interned actions: a request on a
//! built-in resource takes the policy's shared copy of its action (found from its attributes,
//! no text built), anything else builds its text once.

use super::known_actions::{KnownAction, KnownActions};
use crate::model::mapping::{self, Actions, MapError, RequestAttributes};
use crate::model::{ActionPattern, NonResourceAttributes, ResourceAttributes, Scope};

/// What an Azure check needs from a request: its actions (lower-cased) and where. Borrows
/// from the request and the policy's interned actions, so mapping an ordinary request
/// allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureTarget<'r> {
    /// Every action must be allowed ([`AzureTarget::actions`]). One entry for ordinary
    /// requests; wildcard patterns for `kubectl auth can-i '*' …`-style requests. Inline: at
    /// most two. Empty when the one action is interned: the policy's copy is read in place.
    actions: Actions,
    /// The policy's interned copy of the request's one action, when it knows it.
    interned: Option<&'r KnownAction>,
    /// The namespace, for namespaced requests (checked at `<cluster>/namespaces/<ns>`).
    pub namespace: Option<&'r str>,
    /// Request attributes ABAC conditions may read.
    pub attributes: RequestAttributes<'r>,
}

impl<'r> AzureTarget<'r> {
    /// Maps a request under `prefix`, taking interned actions from `known`.
    pub fn of(
        resource: Option<&'r ResourceAttributes>,
        non_resource: Option<&'r NonResourceAttributes>,
        prefix: &'r str,
        known: Option<&'r KnownActions>,
    ) -> Result<AzureTarget<'r>, MapError> {
        let mapped = mapping::map_request(resource, non_resource, prefix)?;
        // Interned under exactly these attributes: the same action, no text built.
        let mut interned = known.zip(resource).and_then(|(k, r)| k.for_request(r));
        let mut actions = Actions::new();
        if interned.is_none() {
            let one = mapped.action_count() == 1;
            mapped.each_action(|text| match known.and_then(|k| k.get(text)) {
                Some(k) if one => interned = Some(k),
                Some(k) => actions.push(k.pattern.clone()),
                None => actions.push(ActionPattern::from_lowercase(text)),
            });
        }
        Ok(AzureTarget {
            actions,
            interned,
            namespace: mapped.namespace,
            attributes: mapped.attributes,
        })
    }

    /// The scope the request is checked at.
    pub fn scope(&self, cluster: &Scope) -> Scope {
        mapping::checked_scope(cluster, self.namespace)
    }

    /// The policy's interned copy of the request's one action, if it knows it (which roles
    /// grant it and which deny assignments name it).
    pub fn interned(&self) -> Option<&'r KnownAction> {
        self.interned
    }

    /// Every action the request stands for; all must be allowed.
    pub fn actions(&self) -> &[ActionPattern] {
        match self.interned {
            Some(known) => std::slice::from_ref(&known.pattern),
            None => &self.actions,
        }
    }

    /// Takes action `i` out to report it: the interned one by its place in the policy (no
    /// copy, no reference count), any other moved out of the target.
    pub fn take_action(&mut self, i: usize) -> ReportedAction {
        match self.interned {
            Some(known) => ReportedAction::Known(known.index()),
            None if i < self.actions.len() => ReportedAction::Owned(self.actions.swap_remove(i)),
            None => ReportedAction::Owned(ActionPattern::new("")),
        }
    }
}

/// An action a reason names: one of the policy's interned actions (by index, rendered from
/// the snapshot the reason holds) or its own copy.
#[derive(Debug)]
pub enum ReportedAction {
    Known(u32),
    Owned(ActionPattern),
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "Microsoft.ContainerService/managedClusters";

    fn get(group: &str, resource: &str, subresource: &str) -> ResourceAttributes {
        ResourceAttributes {
            verb: "get".into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            ..ResourceAttributes::default()
        }
    }

    /// A request on every API group stands for two actions, and both must be checked even
    /// when the policy knows one of them; a request for one action takes the policy's copy,
    /// found by its attributes or, for a subresource that maps like its resource, by its text.
    #[test]
    fn every_action_is_kept_and_known_ones_are_taken_from_the_policy() {
        let known = KnownActions::build(P, &[], &[]);
        let all_groups = get("*", "pods", "");
        let target = AzureTarget::of(Some(&all_groups), None, P, Some(&known)).unwrap();
        let actions: Vec<&str> = target.actions().iter().map(ActionPattern::as_str).collect();
        assert_eq!(
            actions,
            [
                "microsoft.containerservice/managedclusters/pods/read",
                "microsoft.containerservice/managedclusters/*/pods/read"
            ]
        );
        for r in [get("", "pods", ""), get("", "pods", "ephemeralcontainers")] {
            let target = AzureTarget::of(Some(&r), None, P, Some(&known)).unwrap();
            let interned = target.interned().expect("the policy's copy");
            assert_eq!(
                interned.pattern.as_str(),
                "microsoft.containerservice/managedclusters/pods/read"
            );
            assert_eq!(target.actions(), std::slice::from_ref(&interned.pattern));
        }
    }
}
