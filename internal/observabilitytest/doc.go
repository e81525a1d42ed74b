// Package observabilitytest checks what operators import from
// deploy/observability against the services it observes: the alert rules and
// every dashboard query parse as PromQL and name only series the services
// really export (collected from /metrics of a pipeline run in the test), the
// PrometheusRule of the kustomize base carries the same rules as alerts.yaml,
// and every rule tells a person what to do.
//
// The package has no code of its own beyond this comment: it is its tests.
//
//	go test ./internal/observabilitytest
package observabilitytest
