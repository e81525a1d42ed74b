// Package observabilitytest checks what operators import from
// deploy/observability against the services it observes: the alert rules and
// every dashboard query parse as PromQL and name only series the services
// really export (collected from /metrics of a pipeline run in the test), the
// PrometheusRule of the kustomize base carries the same rules as alerts.yaml,
// and every rule tells a person what to do. It also runs the pipeline with
// tracing on against an OTLP receiver and checks that each order is one
// trace across the three services, with its platform calls and nothing
// secret, and that with tracing off no exporter runs.
//
// The package has no code of its own beyond this comment: it is its tests.
//
//	go test ./internal/observabilitytest
package observabilitytest
