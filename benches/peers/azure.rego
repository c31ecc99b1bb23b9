# Azure RBAC data-plane check (docs/azure-rbac.md#evaluation) over indexed data, for benches/peers.rs.
#
# data.policy.assignments[principal] = [{"scope", "role"}]   role assignments by principal id
# data.policy.roles[role]            = [{"data": [pattern], "not": [pattern]}]   one per permissions block
# data.policy.denies[scope]          = [{"everyone", "principals": {id: true}, "excludes": {id: true},
#                                        "children", "blocks"}]   deny assignments by scope
# pattern                            = {"prefix", "suffix", "wild", "len"}   (one `*` at most, lower-case)
#
# input = {"principals": [oid, group...], "action": "<lower-case action>",
#          "scopes": [request scope, ..., "/"], "scope_set": {scope: true}}
package scopegate.peer

default allow := false

allow if {
	not denied
	granted
}

denied if {
	some s in input.scopes
	some d in data.policy.denies[s]
	deny_reaches(d, s)
	deny_applies(d)
	not deny_excluded(d)
	some b in d.blocks
	block_matches(b, input.action)
}

deny_reaches(d, _) if d.children

deny_reaches(d, s) if {
	not d.children
	s == input.scopes[0]
}

deny_applies(d) if d.everyone

deny_applies(d) if {
	some p in input.principals
	d.principals[p]
}

deny_excluded(d) if {
	some p in input.principals
	d.excludes[p]
}

granted if {
	some p in input.principals
	some a in data.policy.assignments[p]
	input.scope_set[a.scope]
	some b in data.policy.roles[a.role]
	block_matches(b, input.action)
}

block_matches(b, action) if {
	some pattern in b.data
	pattern_matches(pattern, action)
	not any_matches(b.not, action)
}

any_matches(patterns, action) if {
	some pattern in patterns
	pattern_matches(pattern, action)
}

pattern_matches(pattern, action) if {
	not pattern.wild
	pattern.prefix == action
}

pattern_matches(pattern, action) if {
	pattern.wild
	count(action) >= pattern.len
	startswith(action, pattern.prefix)
	endswith(action, pattern.suffix)
}
