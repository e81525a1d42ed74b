#!/usr/bin/env bash
# kube-score on what deploy/k8s renders to, as a cluster reviewer would run
# it. kustomize and kube-score are pinned and built from the Go module proxy
# with `go run` (no kubectl or helm needed). Fails on any CRITICAL finding
# that is not one of the ignores below; each ignore is explained in
# deploy/README.md ("kube-score"), and internal/deploytest fails when one is
# not. Warnings are printed and do not fail.
#
#   deploy/kube-score.sh        # or: make kube-score
#
# The NATS cluster's manifests are not scored: they come from the official
# Helm chart with k8s/nats-values.yaml, and rendering that chart needs helm
# and the chart itself, neither of which is here (deploy/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

KUSTOMIZE=sigs.k8s.io/kustomize/kustomize/v5@v5.8.2
KUBE_SCORE=github.com/zegl/kube-score/cmd/kube-score@v1.20.0

# The ignores, one flag each (deploy/README.md says why).
ignores=(
  --ignore-container-cpu-limit
  --ignore-test container-image-pull-policy
  --ignore-test deployment-has-host-podantiaffinity
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# kustomize renders into kube-score's standard input, so the two go run
# builds (most of this step's time on a fresh machine) run side by side.
# --disable-ignore-checks-annotations: an ignore is a decision written down
# here and in the README, never a kube-score/ignore annotation in a manifest.
set +e
go run "$KUSTOMIZE" build deploy/k8s | go run "$KUBE_SCORE" score \
  --output-format ci \
  --kubernetes-version v1.33 \
  --disable-ignore-checks-annotations \
  "${ignores[@]}" \
  - >"$work/score.txt"
status=("${PIPESTATUS[@]}")
set -e
if [ "${status[0]}" -ne 0 ]; then
  echo "kustomize build deploy/k8s failed (exit ${status[0]})" >&2
  exit 1
fi
rc=${status[1]}

grep -v -e '^\[OK\]' -e '^\[SKIPPED\]' "$work/score.txt" || true
ok=$(grep -c '^\[OK\]' "$work/score.txt" || true)
crit=$(grep -c '^\[CRITICAL\]' "$work/score.txt" || true)
warn=$(grep -c '^\[WARNING\]' "$work/score.txt" || true)
echo "kube-score (deploy/k8s): $ok OK, $crit CRITICAL, $warn WARNING; ignored: ${ignores[*]}"
echo "not scored: the NATS cluster (k8s/nats-values.yaml needs helm and the chart to render; deploy/README.md)"
if [ "$ok" -eq 0 ]; then
  echo "kube-score: no check passed; did it score anything?" >&2
  exit 1
fi
if [ "$crit" -ne 0 ] || [ "$rc" -ne 0 ]; then
  echo "kube-score: fix the CRITICAL findings above, or ignore one here with its reason in deploy/README.md (exit $rc)" >&2
  exit 1
fi
