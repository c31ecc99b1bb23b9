//go:build tools

// Package tools records the main package that deploy/helm/check.sh builds
// (helm), so that `go mod tidy` keeps every module it needs in go.mod and
// go.sum.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
