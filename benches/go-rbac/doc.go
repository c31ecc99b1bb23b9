// Package rbacbench benchmarks the in-tree Kubernetes RBAC authorizer
// (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac) on the RBAC policy shape that
// scopegate's synthetic generator builds (src/synthetic.rs, rbac_bindings()), so the
// numbers line up with `cargo bench -F bench-support --bench decide -- decide/rbac`.
//
// See rbac_bench_test.go and run.sh.
package rbacbench
