#!/usr/bin/env bash
# Builds helm (helm.sh/helm/v3/cmd/helm, the release go.mod here pins) into the tools cache and
# prints that folder (deploy/tools/build-go-tool.sh: the cache, the stamp and the environment
# knobs):
#
#   BIN=$(deploy/helm/tools/build-helm.sh)    # then $BIN/helm
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# `helm version` reports the module release (upstream's Makefile stamps it the same way).
exec "${here}/../../tools/build-go-tool.sh" "${here}" helm helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=@VERSION@ -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
