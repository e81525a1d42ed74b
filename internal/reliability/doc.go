// Package reliability is the fault suite of the pipeline: each test injects
// one real fault into the real services (their Run functions, in process or
// as child processes killed with SIGKILL) running against an embedded
// JetStream server and the platform sandbox over HTTP, and fails if an order
// is lost, shipped twice or stuck.
//
// The faults, one test each:
//
//  1. TestKillServices: SIGKILL of ingest, enricher and shipper child
//     processes at random moments, repeatedly, each restarted.
//  2. TestNATSRestart: the NATS server stopped for 10 s mid-run and
//     restarted on the same store and port.
//  3. TestPlatformOutageThenRedrive: delivery/send down for longer than
//     SHIP_MAX_ELAPSED, then recovery and fulfillctl dlq redrive --all.
//  4. TestSlowPlatform: delivery/send with p99 ≈ 2 s latency and timeouts,
//     SHIP_CONCURRENCY 64: no redelivery storm, bounded memory.
//  5. TestPoisonInput: unparseable messages, wrong versions and an order id
//     with a dot injected straight into the stream.
//  6. TestBadHTTPInput: fuzzed and oversize bodies, wrong tokens and
//     slowloris clients against the real order API server.
//  7. TestHostilePlatformResponses (and TestHostileResponsesClient):
//     truncated JSON, wrong types, huge bodies and HTML error pages.
//  8. TestTokenLeak: the app secret and every issued access_token appear in
//     no log, error, /metrics output or stream message.
//
// Beside the faults, TestTwoIngestReplicas runs ingest as the Kubernetes
// base does, two replicas polling one shop, and checks every order is
// received exactly once. Its randomness is seeded and the seed logged;
// FULFILL_SEED=<seed> replays it.
//
// By default (and with -short) the tests that finish within about 30 s run
// with fewer orders: that is what CI runs. FULFILL_RELIABILITY=1 runs every
// test at full size (at least 1,000 orders each); make reliability sets it,
// and FULFILL_RELIABILITY_REPORT=docs/RELIABILITY.md, to which TestMain then
// writes the table of results (fault, orders, shipped, failed, lost,
// duplicates, time).
package reliability
