//! Time-bound (PIM) role assignments: windows, statuses, linked role assignments,
//! eligibilities, and the boundary a decision reports.

use super::*;
use crate::model::{ResourceAttributes, Scope, Timestamp};
use crate::policy::parse::{read_objects, valid_set};
use crate::policy::schema::SCHEDULE_STATUSES_NEVER_GRANTING;
use crate::policy::{IndexOptions, Snapshot};
use serde_json::{Value, json};

const SUBSCRIPTION: &str = "/subscriptions/dfa2a084-766f-4003-8ae1-c4aeb893a99f";
const ROLE: &str = "7f6c6a51-bcf8-42ba-9220-52d62157d7db";
const ALICE: &str = "a3bb8764-cb92-4276-9d2a-ca1e895e55ea";
pub(crate) const START: &str = "2026-01-31T09:00:00Z";
pub(crate) const END: &str = "2026-01-31T17:00:00Z";

pub(crate) fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn role() -> Value {
    json!({"name": ROLE, "roleName": "Pod Reader", "type": "Microsoft.Authorization/roleDefinitions",
           "id": format!("/providers/Microsoft.Authorization/roleDefinitions/{ROLE}"),
           "permissions": [{"actions": [],
               "dataActions": ["Microsoft.ContainerService/managedClusters/pods/read"]}],
           "assignableScopes": ["/"]})
}

/// A role assignment schedule instance as ARM lists it (`GetRoleAssignmentScheduleInstancesByScope`).
pub(crate) fn instance(name: &str, status: &str, start: &str, end: Option<&str>) -> Value {
    let mut properties = json!({
        "originRoleAssignmentId": format!("{SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments/{name}"),
        "assignmentType": "Activated",
        "scope": SUBSCRIPTION,
        "roleDefinitionId": format!("{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{ROLE}"),
        "principalId": ALICE,
        "principalType": "User",
        "status": status,
        "roleAssignmentScheduleId": format!("{SUBSCRIPTION}/providers/Microsoft.Authorization/RoleAssignmentSchedules/{name}"),
        "startDateTime": start,
        "memberType": "Direct",
        "createdOn": start,
    });
    if let Some(end) = end {
        properties["endDateTime"] = json!(end);
    }
    json!({"properties": properties, "name": name,
           "id": format!("{SUBSCRIPTION}/providers/Microsoft.Authorization/RoleAssignmentScheduleInstances/{name}"),
           "type": "Microsoft.Authorization/RoleAssignmentScheduleInstances"})
}

fn eligibility(name: &str) -> Value {
    json!({"properties": {
              "scope": SUBSCRIPTION,
              "roleDefinitionId": format!("{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{ROLE}"),
              "principalId": ALICE, "principalType": "User", "status": "Provisioned",
              "roleEligibilityScheduleId": format!("{SUBSCRIPTION}/providers/Microsoft.Authorization/roleEligibilitySchedules/{name}"),
              "startDateTime": START, "memberType": "Direct"},
           "name": name,
           "id": format!("{SUBSCRIPTION}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/{name}"),
           "type": "Microsoft.Authorization/roleEligibilityScheduleInstances"})
}

/// The role assignment an export taken during the activation also lists.
fn role_assignment(name: &str) -> Value {
    json!({"id": format!("{SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments/{name}"),
           "name": name, "principalId": ALICE, "principalType": "User", "scope": SUBSCRIPTION,
           "roleDefinitionId": format!("{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{ROLE}")})
}

pub(crate) fn snapshot(objects: Vec<Value>) -> Arc<Snapshot> {
    let mut all = vec![role()];
    all.extend(objects);
    let set = valid_set(Value::Array(all));
    let cluster = Scope::parse(&format!(
        "{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
    ))
    .unwrap();
    Arc::new(Snapshot::build(set, &IndexOptions::for_cluster(cluster), 1).unwrap())
}

pub(crate) fn pods_read(now: Option<Timestamp>) -> AccessRequest {
    let mut request = AccessRequest {
        user: "alice@contoso.com".into(),
        resource_attributes: Some(Box::new(ResourceAttributes {
            namespace: "team-a".into(),
            verb: "get".into(),
            resource: "pods".into(),
            ..ResourceAttributes::default()
        })),
        now,
        ..AccessRequest::default()
    };
    request.extra.insert("oid".into(), vec![ALICE.into()]);
    request
}

fn decide_at(snapshot: &Arc<Snapshot>, now: &str) -> Decision {
    authorize(
        snapshot,
        &EngineOptions::default(),
        &pods_read(Some(at(now))),
    )
}

#[test]
fn a_window_opens_at_its_start_and_closes_at_its_end_to_the_millisecond() {
    let s = snapshot(vec![instance("a1", "Provisioned", START, Some(END))]);
    let before = decide_at(&s, "2026-01-31T08:59:59.999Z");
    assert_eq!(before.verdict, Verdict::NoOpinion);
    assert_eq!(
        before.valid_until,
        Some(at(START)),
        "the start may change it"
    );

    let first = decide_at(&s, START);
    assert_eq!(first.verdict, Verdict::Allow, "{}", first.reason);
    assert_eq!(first.valid_until, Some(at(END)));
    let reason = first.reason.to_string();
    assert!(
        reason.contains("RoleAssignmentScheduleInstances/a1") && reason.contains(END),
        "{reason}"
    );

    let last = decide_at(&s, "2026-01-31T16:59:59.999Z");
    assert_eq!(last.verdict, Verdict::Allow);
    let after = decide_at(&s, END);
    assert_eq!(after.verdict, Verdict::NoOpinion, "the end is exclusive");
    assert_eq!(after.valid_until, None, "nothing lies ahead");
}

#[test]
fn an_instance_without_end_grants_from_its_start_on() {
    let s = snapshot(vec![instance("a1", "Provisioned", START, None)]);
    assert_eq!(
        decide_at(&s, "2026-01-31T08:59:59Z").verdict,
        Verdict::NoOpinion
    );
    let later = decide_at(&s, "2036-01-31T08:59:59Z");
    assert_eq!(later.verdict, Verdict::Allow);
    assert_eq!(later.valid_until, None);
}

#[test]
fn the_next_boundary_is_the_nearest_among_the_principals_windows() {
    let s = snapshot(vec![
        instance("a1", "Provisioned", START, Some(END)),
        instance("a2", "Provisioned", "2026-01-31T12:00:00Z", Some(END)),
        instance("a3", "Provisioned", "2026-02-01T09:00:00Z", None),
    ]);
    let early = decide_at(&s, "2026-01-31T08:00:00Z");
    assert_eq!(early.valid_until, Some(at(START)));
    let noon = decide_at(&s, "2026-01-31T13:00:00Z");
    assert_eq!(noon.verdict, Verdict::Allow);
    assert_eq!(noon.valid_until, Some(at(END)));
    let night = decide_at(&s, "2026-01-31T20:00:00Z");
    assert_eq!(night.verdict, Verdict::NoOpinion);
    assert_eq!(night.valid_until, Some(at("2026-02-01T09:00:00Z")));
}

#[test]
fn statuses_that_never_grant_are_kept_inert() {
    for status in SCHEDULE_STATUSES_NEVER_GRANTING {
        for spelled in [status.to_string(), status.to_ascii_lowercase()] {
            let s = snapshot(vec![instance("a1", &spelled, START, Some(END))]);
            let d = decide_at(&s, "2026-01-31T10:00:00Z");
            assert_eq!(d.verdict, Verdict::NoOpinion, "status `{spelled}` granted");
            assert_eq!(
                s.inert_schedules.len(),
                1,
                "`{spelled}` is kept for explain"
            );
        }
    }
    for status in ["Provisioned", "Accepted", "Granted", "AdminApproved"] {
        let s = snapshot(vec![instance("a1", status, START, Some(END))]);
        let d = decide_at(&s, "2026-01-31T10:00:00Z");
        assert_eq!(d.verdict, Verdict::Allow, "status `{status}` did not grant");
    }
}

#[test]
fn a_role_assignment_behind_an_instance_follows_its_window() {
    // Alone, the role assignment grants at any time.
    let alone = snapshot(vec![role_assignment("ra-1")]);
    assert_eq!(
        decide_at(&alone, "2026-03-01T00:00:00Z").verdict,
        Verdict::Allow
    );
    assert_eq!(decide_at(&alone, "2026-03-01T00:00:00Z").valid_until, None);

    // With the instance standing behind it (its id differently cased), only in the window.
    let mut linked = instance("ra-1", "Provisioned", START, Some(END));
    linked["properties"]["originRoleAssignmentId"] = json!(format!(
        "{}/providers/microsoft.authorization/roleassignments/RA-1",
        SUBSCRIPTION.to_ascii_uppercase()
    ));
    let s = snapshot(vec![role_assignment("ra-1"), linked.clone()]);
    assert_eq!(
        decide_at(&s, "2026-03-01T00:00:00Z").verdict,
        Verdict::NoOpinion
    );
    let inside = decide_at(&s, "2026-01-31T10:00:00Z");
    assert_eq!(inside.verdict, Verdict::Allow);
    assert!(
        inside
            .decided_by
            .iter()
            .all(|id| id.contains("ScheduleInstances")),
        "{:?}",
        inside.decided_by
    );

    // An instance that never grants takes the role assignment with it.
    linked["properties"]["status"] = json!("Revoked");
    let revoked = snapshot(vec![role_assignment("ra-1"), linked]);
    assert_eq!(
        decide_at(&revoked, "2026-01-31T10:00:00Z").verdict,
        Verdict::NoOpinion
    );
    assert_eq!(s.stats().principals, 1);
    assert_eq!(
        revoked.stats().principals,
        0,
        "the principal of a dropped role assignment is not counted"
    );
    // Another role assignment is not touched.
    let other = snapshot(vec![
        role_assignment("ra-2"),
        instance("ra-1", "Revoked", START, Some(END)),
    ]);
    assert_eq!(
        decide_at(&other, "2026-01-31T10:00:00Z").verdict,
        Verdict::Allow
    );
}

#[test]
fn eligibility_never_grants_and_explain_says_it_could_activate() {
    let s = snapshot(vec![eligibility("e1")]);
    let d = decide_at(&s, "2026-01-31T10:00:00Z");
    assert_eq!(d.verdict, Verdict::NoOpinion);
    assert_eq!(d.valid_until, None);
    let (_, text) = explain::explain(
        &s,
        &EngineOptions::default(),
        &pods_read(Some(at("2026-01-31T10:00:00Z"))),
    );
    assert!(
        text.contains("roleEligibilityScheduleInstances/e1")
            && text.contains("eligible, not activated: grants nothing (could activate from")
            && text.contains("its role would grant the action"),
        "{text}"
    );
}

#[test]
fn explain_names_the_instance_and_its_window() {
    let s = snapshot(vec![instance("a1", "Provisioned", START, Some(END))]);
    let options = EngineOptions::default();
    let (_, inside) = explain::explain(&s, &options, &pods_read(Some(at(START))));
    assert!(
        inside.contains("GRANTS the action")
            && inside.contains(&format!("window from {START} until {END}"))
            && inside.contains(&format!("holds:     until {END}")),
        "{inside}"
    );
    let (_, after) = explain::explain(&s, &options, &pods_read(Some(at(END))));
    assert!(after.contains("time-bound: not in force"), "{after}");
}

#[test]
fn without_a_decision_time_no_time_bound_assignment_grants() {
    let s = snapshot(vec![instance("a1", "Provisioned", START, None)]);
    let d = authorize(&s, &EngineOptions::default(), &pods_read(None));
    assert_eq!(d.verdict, Verdict::NoOpinion);
}

#[test]
fn instances_load_from_arm_pages_bare_arrays_and_without_type() {
    let page = json!({"value": [instance("a1", "Provisioned", START, Some(END))]});
    let (set, diagnostics) = read_objects("page.json", page);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(set.role_assignment_schedule_instances.len(), 1);

    let mut untyped = instance("a2", "Provisioned", START, None);
    untyped.as_object_mut().unwrap().remove("type");
    let mut untyped_eligibility = eligibility("e1");
    untyped_eligibility.as_object_mut().unwrap().remove("type");
    let (set, diagnostics) = read_objects("list.json", json!([untyped, untyped_eligibility]));
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(set.role_assignment_schedule_instances.len(), 1);
    assert_eq!(set.role_eligibility_schedule_instances.len(), 1);
    assert_eq!(
        set.role_assignments.len(),
        0,
        "not read as role assignments"
    );
}

#[test]
fn bad_windows_are_errors_at_their_field() {
    let text = format!(
        "[\n{}\n]",
        serde_json::to_string_pretty(&instance("a1", "Provisioned", "31/01/2026 09:00", None))
            .unwrap()
    );
    let mut set = crate::policy::PolicySet::default();
    let mut diagnostics = Vec::new();
    crate::policy::parse::parse_text(
        "pim.json",
        &text,
        crate::policy::parse::Format::Json,
        &mut set,
        &mut diagnostics,
    );
    let line = text
        .lines()
        .position(|l| l.contains("startDateTime"))
        .unwrap()
        + 1;
    let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert!(
        diagnostics.iter().any(|d| d.is_error()
            && d.to_string().contains("startDateTime")
            && d.to_string().contains(&format!("line {line},"))),
        "expected an error at line {line}: {shown:?}"
    );
    assert!(set.role_assignment_schedule_instances.is_empty());

    for (start, end, needle) in [
        (END, Some(START), "before it starts"),
        (START, Some("tomorrow"), "endDateTime"),
        ("", None, "no `startDateTime`"),
    ] {
        let (_, diagnostics) = read_objects("pim.json", instance("a1", "Provisioned", start, end));
        assert!(
            diagnostics
                .iter()
                .any(|d| d.is_error() && d.to_string().contains(needle)),
            "{needle}: {diagnostics:?}"
        );
    }
    let (_, diagnostics) = read_objects("pim.json", instance("a1", "Frozen", START, None));
    assert!(
        diagnostics
            .iter()
            .any(|d| !d.is_error() && d.to_string().contains("unknown status `Frozen`")),
        "{diagnostics:?}"
    );
}

#[test]
fn an_instance_read_twice_loads_once_unless_its_window_or_grant_differs() {
    let a1 = instance("a1", "Provisioned", START, Some(END));
    let s = snapshot(vec![a1.clone(), a1.clone()]);
    assert_eq!(s.assignments.len(), 1);
    let mut later = a1.clone();
    later["properties"]["endDateTime"] = json!("2026-01-31T18:00:00Z");
    let set = valid_set(json!([role(), a1, later]));
    let built = Snapshot::build(set, &IndexOptions::default(), 1);
    let errors = built.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        errors.contains("duplicate schedule instance id"),
        "{errors}"
    );
    // The same id and window for another principal: not one instance read twice.
    let mut other = a1.clone();
    other["properties"]["principalId"] = json!("bbbbbbbb-0000-4000-8000-000000000099");
    let set = valid_set(json!([role(), a1, other]));
    let errors = Snapshot::build(set, &IndexOptions::default(), 1)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        errors.contains("duplicate schedule instance id"),
        "{errors}"
    );
}

/// CheckAccess at any scope honours the window too, and the answer's time to live ends at
/// the window's end, not five minutes later.
#[test]
fn check_access_keeps_an_activation_to_its_window() {
    use crate::engine::check_access::decide;
    use crate::model::check_access::{
        AccessDecision, CheckAccess, OperationRequest, Subject, TIME_TO_LIVE_MS,
    };
    let s = snapshot(vec![instance("a1", "Provisioned", START, Some(END))]);
    let question = CheckAccess {
        subject: Subject::Principal {
            object_id: ALICE.parse().unwrap(),
            groups: Vec::new(),
        },
        actions: vec![OperationRequest {
            id: "Microsoft.ContainerService/managedClusters/pods/read".into(),
            is_data_action: true,
            attributes: Default::default(),
        }],
        resource: Scope::parse(&format!("{SUBSCRIPTION}/resourceGroups/rg")).unwrap(),
    };
    let asked = |now: &str| {
        let answer = decide(&s, &question, at(now));
        (
            answer.decisions[0].decision,
            answer.time_to_live_ms(at(now)),
        )
    };
    assert_eq!(
        asked("2026-01-31T08:59:59Z"),
        (AccessDecision::NotAllowed, 1_000)
    );
    assert_eq!(
        asked("2026-01-31T12:00:00Z"),
        (AccessDecision::Allowed, TIME_TO_LIVE_MS)
    );
    assert_eq!(
        asked("2026-01-31T16:59:00Z"),
        (AccessDecision::Allowed, 60_000)
    );
    assert_eq!(asked(END), (AccessDecision::NotAllowed, TIME_TO_LIVE_MS));
}
