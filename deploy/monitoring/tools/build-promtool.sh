#!/usr/bin/env bash
# Builds promtool (github.com/prometheus/prometheus/cmd/promtool, the release go.mod here pins)
# into the tools cache and prints that folder (deploy/tools/build-go-tool.sh: the cache, the
# stamp and the environment knobs):
#
#   BIN=$(deploy/monitoring/tools/build-promtool.sh)    # then $BIN/promtool
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# promtool --version reports the module release (upstream stamps it the same way).
exec "${here}/../../tools/build-go-tool.sh" "${here}" promtool github.com/prometheus/prometheus \
  github.com/prometheus/prometheus/cmd/promtool \
  "-X github.com/prometheus/common/version.Version=@SEMVER@ -X github.com/prometheus/common/version.Branch=module -X github.com/prometheus/common/version.Revision=@VERSION@"
