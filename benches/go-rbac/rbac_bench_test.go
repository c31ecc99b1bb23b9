package rbacbench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
	rbacregistryvalidation "k8s.io/kubernetes/pkg/registry/rbac/validation"
	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac"
)

// Sizes benchmarked: the same as benches/decide.rs `decide/rbac`.
var sizes = []int{100, 10_000, 100_000}

// ---- a replica of src/synthetic.rs --------------------------------------------------------

// rng is splitmix64, exactly as `synthetic::Rng`.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *rng) below(n int) int {
	if n < 1 {
		n = 1
	}
	return int(r.next() % uint64(n))
}

func guid(kind uint32, n uint64) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", kind, (n>>48)&0xffff, (n>>36)&0xfff, (n>>24)&0xfff, n&0xffffffffffff)
}

const (
	namespaces    = 50
	customRoles   = 20
	subscriptons  = 20
	rgsPerSub     = 5
	clustersPerRG = 2
	// benches/decide.rs builds the RBAC cases with 1,000 Azure assignments and 10 groups.
	azureAssignments = 1_000
	groupsPerUser    = 10
	writersGroup     = "bbbbbbbb-0000-4000-8000-000000000001"
)

// skipAzure advances the generator over the draws `synthetic::generate` makes before it
// calls `rbac_bindings` (custom roles, then the Azure assignments), so the bindings below
// are the same objects the Rust benchmark loads, not merely the same shape.
func skipAzure(r *rng, assignments int) {
	for i := 0; i < customRoles; i++ {
		for j := 0; j < 3; j++ {
			r.below(14) // DATA_ACTIONS
		}
	}
	pool := assignments / 3
	if pool < 10 {
		pool = 10
	}
	roleIDs := 4 + customRoles
	for i := 3; i < assignments; i++ {
		r.below(10)
		r.below(pool)
		r.below(roleIDs)
		r.below(subscriptons)
		r.below(rgsPerSub)
		r.below(clustersPerRG)
		switch k := r.below(100); {
		case k <= 4:
			r.below(4) // management group
		case k <= 59:
		default:
			r.below(namespaces)
		}
	}
}

type policy struct {
	clusterRoles        []*rbacv1.ClusterRole
	roleBindings        []*rbacv1.RoleBinding
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
}

var benchReaderRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "bench-reader"}

// rbacBindings mirrors `synthetic::rbac_bindings(n, rng)`.
func rbacBindings(n int, r *rng) policy {
	p := policy{
		clusterRoles: []*rbacv1.ClusterRole{{
			ObjectMeta: metav1.ObjectMeta{Name: "bench-reader"},
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{"", "apps"},
				Resources: []string{"pods", "deployments", "configmaps"},
				Verbs:     []string{"get", "list", "watch"},
			}},
		}},
		roleBindings: []*rbacv1.RoleBinding{{
			ObjectMeta: metav1.ObjectMeta{Name: "bench-user", Namespace: "ns-1"},
			RoleRef:    benchReaderRef,
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "bench-user"}},
		}},
	}
	for i := 0; i < n; i++ {
		var subject rbacv1.Subject
		if r.below(2) == 0 {
			subject = rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("user-%d", i)}
		} else {
			subject = rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("group-%d", r.below(n))}
		}
		if i%5 == 0 {
			p.clusterRoleBindings = append(p.clusterRoleBindings, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("crb-%d", i)},
				RoleRef:    benchReaderRef,
				Subjects:   []rbacv1.Subject{subject},
			})
		} else {
			p.roleBindings = append(p.roleBindings, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rb-%d", i), Namespace: fmt.Sprintf("ns-%d", r.below(namespaces))},
				RoleRef:    benchReaderRef,
				Subjects:   []rbacv1.Subject{subject},
			})
		}
	}
	return p
}

func generate(n int) policy {
	r := &rng{s: 0x5C09E6A7}
	skipAzure(r, azureAssignments)
	return rbacBindings(n, r)
}

// userGroups mirrors `Generated::user_groups` for 10 groups per user.
func userGroups() []string {
	pool := azureAssignments / 3
	groups := []string{writersGroup}
	for i := 1; i < groupsPerUser; i++ {
		if i%4 == 0 {
			groups = append(groups, guid(0x9, uint64(i*7%pool)))
		} else {
			groups = append(groups, guid(0x5, uint64(i)))
		}
	}
	return append(groups, user.AllAuthenticated)
}

// ---- authorizers --------------------------------------------------------------------------

// informerAuthorizer is wired exactly as kube-apiserver wires --authorization-mode=RBAC
// (pkg/kubeapiserver/authorizer/config.go): rbac.New over client-go listers, which read
// shared-informer indexers (role bindings indexed by namespace). The indexers are filled
// directly instead of by a watch.
func informerAuthorizer(p policy) *rbac.RBACAuthorizer {
	nsIndex := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	roles := cache.NewIndexer(cache.MetaNamespaceKeyFunc, nsIndex)
	roleBindings := cache.NewIndexer(cache.MetaNamespaceKeyFunc, nsIndex)
	clusterRoles := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	clusterRoleBindings := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, o := range p.clusterRoles {
		must(clusterRoles.Add(o))
	}
	for _, o := range p.roleBindings {
		must(roleBindings.Add(o))
	}
	for _, o := range p.clusterRoleBindings {
		must(clusterRoleBindings.Add(o))
	}
	return rbac.New(
		&rbac.RoleGetter{Lister: rbaclisters.NewRoleLister(roles)},
		&rbac.RoleBindingLister{Lister: rbaclisters.NewRoleBindingLister(roleBindings)},
		&rbac.ClusterRoleGetter{Lister: rbaclisters.NewClusterRoleLister(clusterRoles)},
		&rbac.ClusterRoleBindingLister{Lister: rbaclisters.NewClusterRoleBindingLister(clusterRoleBindings)},
	)
}

// staticAuthorizer is how upstream's BenchmarkAuthorize builds one (rbac_test.go):
// NewTestRuleResolver's StaticRoles, whose ListRoleBindings scans every role binding.
func staticAuthorizer(p policy) *rbac.RBACAuthorizer {
	_, resolver := rbacregistryvalidation.NewTestRuleResolver(nil, p.roleBindings, p.clusterRoles, p.clusterRoleBindings)
	return rbac.New(resolver, resolver, resolver, resolver)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// ---- requests -----------------------------------------------------------------------------

func request(verb, resource string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{
		User:            &user.DefaultInfo{Name: "bench-user", Groups: userGroups()},
		ResourceRequest: true,
		Verb:            verb,
		Resource:        resource,
		Namespace:       "ns-1",
		APIVersion:      "v1",
	}
}

var cases = []struct {
	name     string
	attrs    authorizer.AttributesRecord
	expected authorizer.Decision
}{
	// The case scopegate's decide/rbac/allow measures.
	{"allow", request("list", "pods"), authorizer.DecisionAllow},
	// Nothing grants: every cluster role binding and every ns-1 role binding is visited.
	{"no_opinion", request("get", "secrets"), authorizer.DecisionNoOpinion},
}

// ---- benchmarks ---------------------------------------------------------------------------

func BenchmarkRBAC(b *testing.B) {
	ctx := context.Background()
	for _, n := range sizes {
		p := generate(n)
		authorizers := []struct {
			name string
			a    *rbac.RBACAuthorizer
		}{
			{"informer", informerAuthorizer(p)},
			{"static", staticAuthorizer(p)},
		}
		for _, az := range authorizers {
			for _, c := range cases {
				attrs := c.attrs
				if d, reason, err := az.a.Authorize(ctx, attrs); d != c.expected || err != nil {
					b.Fatalf("N=%d %s %s: decision %v (%q, %v), want %v", n, az.name, c.name, d, reason, err, c.expected)
				}
				b.Run(fmt.Sprintf("bindings=%d/%s/%s", n, az.name, c.name), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						az.a.Authorize(ctx, attrs)
					}
				})
			}
		}
	}
}

// TestShape checks the generated objects match src/synthetic.rs in count and shape.
func TestShape(t *testing.T) {
	for _, n := range sizes {
		p := generate(n)
		if got := len(p.clusterRoleBindings) + len(p.roleBindings) - 1; got != n {
			t.Fatalf("N=%d: %d bindings", n, got)
		}
		if want := (n + 4) / 5; len(p.clusterRoleBindings) != want {
			t.Fatalf("N=%d: %d cluster role bindings, want %d", n, len(p.clusterRoleBindings), want)
		}
		ns1 := 0
		for _, rb := range p.roleBindings {
			if rb.Namespace == "ns-1" {
				ns1++
			}
		}
		t.Logf("N=%d: %d ClusterRoleBindings, %d RoleBindings (%d in ns-1)", n, len(p.clusterRoleBindings), len(p.roleBindings), ns1)
	}
}

// TestDump prints the generated objects in a canonical one-line-per-object form, to diff
// against the Rust generator (SYNTHETIC_DUMP=N go test -run TestDump; see README.md).
func TestDump(t *testing.T) {
	arg := os.Getenv("SYNTHETIC_DUMP")
	if arg == "" {
		t.Skip("set SYNTHETIC_DUMP=N")
	}
	n, err := strconv.Atoi(arg)
	if err != nil {
		t.Fatal(err)
	}
	p := generate(n)
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintln(w, "ClusterRole bench-reader - - -")
	// src/synthetic.rs emits bench-user first, then binding i in order, whichever its kind.
	rb, crb := 0, 0
	for i := -1; i < n; i++ {
		if i >= 0 && i%5 == 0 {
			b := p.clusterRoleBindings[crb]
			crb++
			fmt.Fprintf(w, "ClusterRoleBinding %s - %s %s\n", b.Name, b.Subjects[0].Kind, b.Subjects[0].Name)
		} else {
			b := p.roleBindings[rb]
			rb++
			fmt.Fprintf(w, "RoleBinding %s %s %s %s\n", b.Name, b.Namespace, b.Subjects[0].Kind, b.Subjects[0].Name)
		}
	}
	fmt.Fprintf(w, "groups %s\n", strings.Join(userGroups(), ","))
}
