//! The shipped deployment files agree with each other: the `extra` key kube-apiserver's
//! authentication writes the Entra object id to is the key scopegate reads.

mod support;

use support::root;

fn yaml(path: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The extra keys the shipped AuthenticationConfiguration fills from the `oid` claim.
fn oid_extra_keys() -> Vec<String> {
    let authn = yaml("deploy/apiserver/authentication-config.yaml");
    assert_eq!(authn["kind"], "AuthenticationConfiguration");
    assert_eq!(authn["apiVersion"], "apiserver.config.k8s.io/v1");
    let jwt = authn["jwt"].as_sequence().unwrap();
    assert_eq!(jwt.len(), 1);
    let mappings = &jwt[0]["claimMappings"];
    assert_eq!(mappings["groups"]["claim"], "groups");
    assert_eq!(mappings["groups"]["prefix"], "");
    let username = mappings["username"]["expression"].as_str().unwrap();
    assert!(username.contains("claims.upn") && username.contains("claims.preferred_username"));
    mappings["extra"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|e| e["valueExpression"] == "claims.oid")
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn shipped_scopegate_configs_read_the_key_the_authentication_config_writes() {
    let keys = oid_extra_keys();
    assert_eq!(keys, ["scopegate.io/oid"]);
    // kube-apiserver refuses extra keys that are not domain-prefixed, lowercase paths.
    let (domain, _) = keys[0].split_once('/').unwrap();
    assert!(domain.contains('.'), "{domain}");

    let static_pod = yaml("deploy/static-pod/scopegate-config.yaml");
    assert_eq!(static_pod["principalClaim"], keys[0].as_str());
    let configmap = yaml("deploy/kubernetes/configmap-config.yaml");
    let embedded: serde_yaml::Value =
        serde_yaml::from_str(configmap["data"]["scopegate.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(embedded["principalClaim"], keys[0].as_str());
}
