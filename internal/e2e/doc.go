// Package e2e holds the end-to-end tests: the real services' Run functions,
// in process or as child processes killed with SIGKILL, against embedded
// JetStream and the platform sandbox.
package e2e
