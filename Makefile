# Developer entry points. CI runs .ci/run (gofmt, go vet, build, kube-score as
# `make kube-score`, and the same tests as `make test`).

GO       ?= go
FUZZTIME ?= 30s
# Where `go test -fuzz` keeps the corpus it grows for the order API decoder;
# the reliability suite replays it against the real server.
FUZZ_CORPUS = $(shell $(GO) env GOCACHE)/fuzz/github.com/fulfill/pipeline/internal/ingest/FuzzDecodeOrderRequest

.PHONY: test fuzz reliability bench kube-score

## test: every test, with the race detector; the reliability suite runs its
## fast subset (fewer orders, the tests over ~30 s skipped).
test:
	$(GO) test -race ./...

## fuzz: fuzz the order API's body decoder for FUZZTIME.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeOrderRequest$$' -fuzztime $(FUZZTIME) ./internal/ingest

## reliability: the whole fault suite at full size (every fault with at least
## 1,000 orders, kills, a 10 s NATS outage, a slow platform), after a fuzzing
## run whose corpus it replays; writes docs/RELIABILITY.md.
reliability: fuzz
	FULFILL_RELIABILITY=1 \
	FULFILL_RELIABILITY_REPORT=$(CURDIR)/docs/RELIABILITY.md \
	FULFILL_FUZZ_CORPUS=$(FUZZ_CORPUS) \
		$(GO) test -race -count=1 -timeout 30m -v ./internal/reliability



## bench: the performance bench; writes docs/PERFORMANCE.md and docs/sweep.svg.
bench:
	$(GO) run ./cmd/fulfillctl bench --out docs/PERFORMANCE.md

## kube-score: render deploy/k8s with a pinned kustomize and score it with a
## pinned kube-score (both via go run); fails on a CRITICAL finding that
## deploy/README.md does not list as ignored.
kube-score:
	bash deploy/kube-score.sh
