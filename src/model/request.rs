//! What is being asked: the user and the attributes of one Kubernetes request, as the
//! `spec` of a SubjectAccessReview carries them.

use super::name_hash::name_hash;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Kubernetes' reserved prefix for user and group names (`system:masters`,
/// `system:serviceaccount:…`): names only Kubernetes gives.
pub const SYSTEM_PREFIX: &str = "system:";

/// The `spec` of a SubjectAccessReview (v1 field names; v1beta1's `group` is accepted too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessRequest {
    /// Boxed: decoding moves the request through each layer of `Option`, and this block is
    /// more than half of it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_object"
    )]
    pub resource_attributes: Option<Box<ResourceAttributes>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_object"
    )]
    pub non_resource_attributes: Option<NonResourceAttributes>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        default,
        alias = "group",
        skip_serializing_if = "Groups::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub groups: Groups,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub extra: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The decision time: time-bound (PIM) role assignments grant only while it lies in their
    /// window. Not part of the review on the wire (the server fills it from its clock per
    /// request); `None` means no time is known and no time-bound assignment grants.
    #[serde(skip)]
    pub now: Option<super::Timestamp>,
}

/// The requester's groups, in one buffer, each with its [`name_hash`] worked out as it is
/// decoded. An Entra token carries up to 200 groups: a `String` per group was most of the
/// cost of decoding a review, and a decision tests every group against the policy's
/// prefilters by hash alone, reading a group's text only when a filter says it may matter.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Groups {
    text: String,
    entries: Vec<GroupEntry>,
}

/// One group of [`Groups`]: its hash and where its text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupEntry {
    /// [`name_hash`] of the group's text.
    pub hash: u64,
    start: u32,
    end: u32,
}

impl GroupEntry {
    /// The length of the group's text in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

impl Groups {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends a group. A group of 4 GiB or more cannot arrive in a bounded request body
    /// (`--max-body-bytes`); it is refused rather than cut.
    pub fn push(&mut self, group: &str) -> Result<(), GroupTooLong> {
        let start = u32::try_from(self.text.len()).map_err(|_| GroupTooLong)?;
        let end = u32::try_from(self.text.len() + group.len()).map_err(|_| GroupTooLong)?;
        self.text.push_str(group);
        self.entries.push(GroupEntry {
            hash: name_hash(group.as_bytes()),
            start,
            end,
        });
        Ok(())
    }

    /// Every group's hash and place, for loops over every group of every request.
    pub fn entries(&self) -> &[GroupEntry] {
        &self.entries
    }

    /// The text of one of this list's entries.
    #[inline]
    pub fn name(&self, entry: &GroupEntry) -> &str {
        self.text
            .get(entry.start as usize..entry.end as usize)
            .unwrap_or_default()
    }

    /// The groups, in request order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        self.entries.iter().map(|e| self.name(e))
    }

    pub fn contains(&self, group: &str) -> bool {
        self.iter().any(|g| g == group)
    }
}

/// A group longer than a request body can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a group name is longer than 4 GiB")]
pub struct GroupTooLong;

/// Groups from names in memory (flags, tests); a name too long to keep is left out.
impl<S: AsRef<str>> FromIterator<S> for Groups {
    fn from_iter<I: IntoIterator<Item = S>>(groups: I) -> Self {
        let mut out = Groups::default();
        for g in groups {
            if out.push(g.as_ref()).is_err() {
                break;
            }
        }
        out
    }
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Groups {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Groups {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        /// Appends one string element to the buffer, borrowed or not, without a `String`.
        struct Element<'a>(&'a mut Groups);
        impl<'de> serde::de::DeserializeSeed<'de> for Element<'_> {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
                de.deserialize_str(self)
            }
        }
        impl serde::de::Visitor<'_> for Element<'_> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a group name")
            }
            fn visit_str<E: serde::de::Error>(self, group: &str) -> Result<(), E> {
                self.0.push(group).map_err(E::custom)
            }
        }
        struct List;
        impl<'de> serde::de::Visitor<'de> for List {
            type Value = Groups;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of group names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Groups, A::Error> {
                // Sized for a typical token, so the usual request allocates twice.
                let mut groups = Groups {
                    text: String::with_capacity(1024),
                    entries: Vec::with_capacity(32),
                };
                while seq.next_element_seed(Element(&mut groups))?.is_some() {}
                Ok(groups)
            }
        }
        de.deserialize_seq(List)
    }
}

/// `spec.resourceAttributes`. Selectors are carried but no rule reads them: they can only
/// narrow a request, so authorizing the unrestricted request is safe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAttributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<serde_json::Value>,
}

/// `spec.nonResourceAttributes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NonResourceAttributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
}

/// Decodes a `T` from a JSON object only. serde's derived structs also accept an array,
/// read field by field in declaration order: no Kubernetes client sends one, and reading it
/// would give meaning to a body that has none.
pub fn object<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Object<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    de.deserialize_map(Object(std::marker::PhantomData))
}

/// [`object`], or `null`.
pub fn optional_object<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Present<T>(T);
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
        fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
            object(de).map(Present)
        }
    }
    Ok(Option::<Present<T>>::deserialize(de)?.map(|p| p.0))
}

/// Kubernetes serialises empty lists and maps as `null` in places; treat that as empty.
fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

impl AccessRequest {
    /// Whether the user is one of Kubernetes' own (`system:…`, any case): Guard's rule gives
    /// them no Azure opinion.
    pub fn is_system_user(&self) -> bool {
        self.user
            .get(..SYSTEM_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(SYSTEM_PREFIX))
    }

    /// The request's verb, whichever attribute block carries it.
    pub fn verb(&self) -> &str {
        match (&self.resource_attributes, &self.non_resource_attributes) {
            (Some(r), _) => &r.verb,
            (None, Some(n)) => &n.verb,
            (None, None) => "",
        }
    }

    /// The namespace of a resource request, `""` otherwise.
    pub fn namespace(&self) -> &str {
        self.resource_attributes
            .as_ref()
            .map_or("", |r| r.namespace.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups_of(json: &str) -> Result<Vec<String>, serde_json::Error> {
        let request: AccessRequest = serde_json::from_str(json)?;
        Ok(request.groups.iter().map(str::to_string).collect())
    }

    #[test]
    fn groups_decode_in_order_with_escapes_empty_and_null() {
        let decoded = groups_of(r#"{"groups":["a","b\"c","","ü\u00e9","system:authenticated"]}"#);
        let expected = ["a", "b\"c", "", "üé", "system:authenticated"];
        assert_eq!(decoded.ok(), Some(expected.map(String::from).to_vec()));
        assert_eq!(groups_of(r#"{"groups":null}"#).ok(), Some(vec![]));
        assert_eq!(
            groups_of(r#"{"group":["x"]}"#).ok(),
            Some(vec!["x".to_string()])
        );
        assert!(groups_of(r#"{"groups":["a",1]}"#).is_err());
        assert!(groups_of(r#"{"groups":"a"}"#).is_err());
    }

    #[test]
    fn attribute_blocks_are_objects_only() {
        let decode = |json: &str| serde_json::from_str::<AccessRequest>(json);
        let object = decode(
            r#"{"resourceAttributes":{"verb":"get","resource":"pods"},"nonResourceAttributes":null}"#,
        );
        assert_eq!(
            object
                .ok()
                .and_then(|r| r.resource_attributes)
                .map(|a| a.resource),
            Some("pods".to_string())
        );
        for json in [
            r#"{"resourceAttributes":["dev","get","","v1","pods"]}"#,
            r#"{"nonResourceAttributes":["/api","get"]}"#,
        ] {
            let error = decode(json)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("expected an object"), "{json}: {error}");
        }
    }

    #[test]
    fn groups_round_trip_through_json() {
        let groups: Groups = ["g1", "", "g\"3"].into_iter().collect();
        assert_eq!(groups.len(), 3);
        assert!(groups.contains("") && groups.contains("g\"3") && !groups.contains("g"));
        let text = serde_json::to_string(&groups).unwrap_or_default();
        assert_eq!(text, r#"["g1","","g\"3"]"#);
        let back: Groups = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, groups);
        for entry in back.entries() {
            let name = back.name(entry);
            assert_eq!(
                (entry.hash, entry.len()),
                (name_hash(name.as_bytes()), name.len())
            );
        }
    }
}

/// Where a requester's groups come from: the token (and so the request kube-apiserver sends),
/// or the directory snapshot's current transitive membership of the object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupsFrom {
    /// The token's groups: the request's for a decision (widened by their parent groups when
    /// the policy holds a directory snapshot), the `groups` claim for a TokenReview (the
    /// directory on overage).
    #[default]
    Token,
    /// The directory snapshot's transitive membership of the object id; the token's groups
    /// are not read. Without a directory snapshot, no groups.
    Directory,
}
