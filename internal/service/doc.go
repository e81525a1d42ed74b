// Package service is what every binary of the pipeline does the same way:
// JSON logs with zerolog, the NATS connection and the ORDERS stream, the
// admin server (/healthz, /readyz, /metrics) and the Prometheus metrics of
// each stage.
package service
