//! A budget on how far YAML aliases may expand a policy file.
//!
//! An alias (`*name`) stands for a copy of its anchor's node, so a file of a megabyte can
//! stand for gigabytes (500 references to one 1 MiB anchor). Before a YAML file is
//! deserialised, one pass walks its documents with the same parser, counting what each node
//! would cost once expanded and keeping nothing, and stops as soon as the count passes the
//! file's budget ([`budget`]). Aliases are followed as the real parse follows them, so both
//! see the same expansion; stopping at the budget bounds the pass's own work by it too.

use super::{Diagnostic, Origin};
use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use std::sync::Arc;

/// How many times its own size a YAML file may expand to.
pub const EXPANSION_FACTOR: usize = 10;

/// Expansion allowed on top of [`EXPANSION_FACTOR`], so that small files may use anchors.
pub const EXPANSION_ALLOWANCE: usize = 64 * 1024;

/// What a node costs besides its text: about the separator and indentation it takes in a
/// file, so that a file without aliases counts about its own size (`[1,2,3]` counts 6 for
/// the numbers and 2 for the list, `a: b` 6).
const NODE_COST: usize = 2;

/// The most a YAML file of `len` bytes may expand to.
pub fn budget(len: usize) -> usize {
    len.saturating_mul(EXPANSION_FACTOR)
        .saturating_add(EXPANSION_ALLOWANCE)
}

/// A YAML file whose aliases expand past its budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "aliases expand this YAML file past its budget of {limit} bytes ({EXPANSION_FACTOR} times \
     its {len} bytes plus {EXPANSION_ALLOWANCE}); refer to large anchors fewer times"
)]
pub struct OverBudget {
    /// The document (1-based) in which the expansion passed the budget.
    pub document: usize,
    pub len: usize,
    pub limit: usize,
}

/// Checks that `text` expanded (every alias replaced by its anchor's node) stays within
/// [`budget`]. YAML that does not parse passes: the real parse reports it with its place.
pub fn check(text: &str) -> Result<(), OverBudget> {
    // Every alias names an anchor (`&name`); without a `&` anywhere nothing can expand, and
    // the file is parsed once, not twice (most policy files: `kubectl` and `az` write none).
    if !text.contains('&') {
        return Ok(());
    }
    let limit = budget(text.len());
    let mut tally = Tally { spent: 0, limit };
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        if Count(&mut tally).deserialize(document).is_err() {
            if tally.spent > limit {
                return Err(OverBudget {
                    document: index + 1,
                    len: text.len(),
                    limit,
                });
            }
            // A syntax error: the stream cannot be resumed, and the real parse reports it.
            break;
        }
    }
    Ok(())
}

/// [`check`] as the diagnostic the loader records, naming `file`.
pub fn over_budget(file: &Arc<str>, text: &str) -> Option<Diagnostic> {
    check(text).err().map(|over| {
        Diagnostic::error(
            Origin::new(file.clone(), &format!("document {}", over.document)),
            over.to_string(),
        )
    })
}

/// The expanded size counted so far, and the most it may reach.
struct Tally {
    spent: usize,
    limit: usize,
}

/// Counts one node (and everything under it) into the tally, building nothing.
struct Count<'t>(&'t mut Tally);

impl Count<'_> {
    fn node<E: de::Error>(self, text: usize) -> Result<(), E> {
        self.0.spent = self.0.spent.saturating_add(NODE_COST).saturating_add(text);
        if self.0.spent > self.0.limit {
            return Err(E::custom("over the expansion budget"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.node(0)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.node(0)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.node(0)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.node(0)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.node(0)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.node(0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.node(v.len())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        self.node(v.len())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.node(0)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.node(0)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let tally = self.0;
        Count(&mut *tally).node(0)?;
        while seq.next_element_seed(Count(&mut *tally))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let tally = self.0;
        Count(&mut *tally).node(0)?;
        while map.next_key_seed(Count(&mut *tally))?.is_some() {
            map.next_value_seed(Count(&mut *tally))?;
        }
        Ok(())
    }

    /// A tagged node (`!Tag value`): the tag, then the value.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let tally = self.0;
        let ((), value) = data.variant_seed(Count(&mut *tally))?;
        value.newtype_variant_seed(Count(&mut *tally))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySet;
    use crate::policy::parse::{Format, parse_text};

    /// A ClusterRole whose `rules` all name one anchored list of `anchor` bytes: the shape
    /// that once took a 1.1 MB file to 2.4 GB.
    fn amplified_cluster_role(anchor: usize, references: usize) -> String {
        let mut text = format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n\
             metadata:\n  name: amplified\nrules:\n\
             - apiGroups: [\"\"]\n  resources: [\"pods\"]\n  verbs: [\"get\"]\n  \
             resourceNames: &big [\"{}\"]\n",
            "x".repeat(anchor)
        );
        for _ in 0..references {
            text.push_str(
                "- {apiGroups: [\"\"], resources: [\"pods\"], verbs: [\"get\"], resourceNames: *big}\n",
            );
        }
        text
    }

    fn parse(text: &str) -> (PolicySet, Vec<Diagnostic>) {
        let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
        parse_text(
            "amplified.yaml",
            text,
            Format::Yaml,
            &mut set,
            &mut diagnostics,
        );
        (set, diagnostics)
    }

    /// 200 references to a 64 KiB anchor (13 MB expanded from 80 KB) are refused before
    /// the file is deserialised, with an error naming the file.
    #[test]
    fn many_references_to_a_large_anchor_are_refused() {
        let text = amplified_cluster_role(64 * 1024, 200);
        let over = check(&text).expect_err("13 MB from 80 KB is over budget");
        assert_eq!(over.document, 1);
        assert_eq!(
            over.limit,
            text.len() * EXPANSION_FACTOR + EXPANSION_ALLOWANCE
        );

        let (set, diagnostics) = parse(&text);
        assert!(
            set.cluster_roles.is_empty(),
            "nothing is read from the file"
        );
        let [error] = diagnostics.as_slice() else {
            panic!("one diagnostic: {diagnostics:?}");
        };
        assert!(error.is_error());
        assert!(
            error
                .to_string()
                .contains("amplified.yaml: document 1: aliases expand this YAML file past"),
            "{error}"
        );
    }

    /// Nested aliases (nine levels of ten references, 10⁹ strings) stop at the budget.
    #[test]
    fn nested_aliases_stop_at_the_budget() {
        let mut text = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for level in 1..9 {
            let previous = format!("*a{}", level - 1);
            let list = [previous.as_str(); 10].join(",");
            text.push_str(&format!("a{level}: &a{level} [{list}]\n"));
        }
        assert!(check(&text).is_err());
    }

    /// A file without aliases counts about its own size, however dense; anchors used a
    /// few times, and anchors in a small file, stay well within the budget.
    #[test]
    fn ordinary_files_are_within_budget() {
        let dense = format!("[{}]", vec!["1"; 200_000].join(","));
        let mut tally = Tally {
            spent: 0,
            limit: usize::MAX,
        };
        for document in serde_yaml::Deserializer::from_str(&dense) {
            Count(&mut tally).deserialize(document).unwrap();
        }
        assert!(
            tally.spent <= dense.len() * 3 / 2,
            "{} for {}",
            tally.spent,
            dense.len()
        );

        assert_eq!(check(&amplified_cluster_role(1024, 9)), Ok(()));
        assert_eq!(check(&amplified_cluster_role(64 * 1024, 8)), Ok(()));
        let (set, diagnostics) = parse(&amplified_cluster_role(1024, 9));
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(set.cluster_roles.len(), 1);

        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in ["policies/kubernetes", "policies/kubernetes/bootstrap"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if Format::of_path(&path) == Some(Format::Yaml) {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert_eq!(check(&text), Ok(()), "{}", path.display());
                }
            }
        }
    }

    /// YAML that does not parse is left to the real parse, which says where.
    #[test]
    fn syntax_errors_are_reported_by_the_parse() {
        let text = "a: [1, 2\nb: *missing\n";
        assert_eq!(check(text), Ok(()));
        let (_, diagnostics) = parse(text);
        assert!(
            diagnostics
                .iter()
                .any(|d| d.is_error() && d.message.starts_with("invalid YAML")),
            "{diagnostics:?}"
        );
    }
}
