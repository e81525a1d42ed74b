// Package cluster proves on one machine what deploy/ promises on many: the
// pipeline keeps its exactly-once promise on a three-node JetStream cluster
// when a node goes away. Its test starts three embedded nats-server nodes
// clustered on loopback, runs ingest, two enrichers and two shippers with
// STREAM_REPLICAS=3 against the platform sandbox, shuts down the node that
// leads the ORDERS stream mid-run, and checks that every order still ends in
// exactly one terminal event, with one successful delivery/send for each
// shipped order and no concurrent sends.
//
// The package has no code of its own beyond this comment: it is its test,
// which takes 35–40 s with the race detector on two cores and is skipped
// by go test -short.
//
//	go test -race -run TestPipelineSurvivesLosingStreamLeader ./internal/cluster
package cluster
