#!/usr/bin/env bash
# Renders charts/rollout-guard with a real helm binary into tests/fixtures/chart/golden-*.yaml,
# which tests/chart.rs compares with its own renderer (tests/chart/helm.rs): the chart's tests
# render without helm, and these files say what helm itself made of the same chart and values.
#
#   HELM=/path/to/helm tools/helm-golden/render.sh
#
# Run it after any change to the chart or to the values files below, and commit the output;
# it stops if `helm lint --strict` fails on any of them.
# Each file's first line is the command that made it; the test reads the release name and
# the values file from that line, so the two cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/../.."

helm=${HELM:-helm}
version=$("$helm" version --short)
out=tests/fixtures/chart

render() {
    local name=$1 release=$2 values=${3:-}
    local args=(template "$release" charts/rollout-guard --namespace guard-system --kube-version 1.30.0)
    [[ -n $values ]] && args+=(--values "$values")
    # The same values must pass helm's own lint first.
    "$helm" lint --strict charts/rollout-guard ${values:+--values "$values"} >/dev/null
    {
        echo "# helm ${args[*]}"
        echo "# rendered by helm $version with tools/helm-golden/render.sh; do not edit"
        "$helm" "${args[@]}"
    } >"$out/golden-$name.yaml"
    echo "$out/golden-$name.yaml"
}

render defaults rollout-guard
render everything prod tests/fixtures/chart-values-everything.yaml
render external-tls ext tests/fixtures/chart/values-external-tls.yaml
