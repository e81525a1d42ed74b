// Package deploytest checks what users deploy, in deploy/, against the code
// it deploys: every YAML file parses; the compose file and the Kubernetes
// base set only environment variables the binaries accept (taken from
// config.Vars, not from a copied list); probes, resources, grace periods and
// disruption budgets are present; each stage has a NetworkPolicy of its own
// that admits only the ports it serves and lets out only NATS, DNS and
// HTTPS; images are pulled IfNotPresent and replicas spread over nodes; the
// kube-score step pins its tools and documents every check it ignores;
// tokens appear only in Secret objects; the KEDA triggers name the stream
// and consumers of pkg/events; the NATS
// configuration syncs every write; and the Dockerfile builds every program
// under cmd/ with the Go version of go.mod.
//
// The package has no code of its own beyond this comment: it is its tests.
//
//	go test ./internal/deploytest
package deploytest
