// Package ingest is the first stage: it polls WeChat Channels for orders
// awaiting shipment and vv-tool for logistics orders of other shops, accepts
// orders over an authenticated HTTP API, and publishes each fact once to
// JetStream, remembering what it published in a KV bucket so restarts and
// repeated polls publish nothing twice.
package ingest
