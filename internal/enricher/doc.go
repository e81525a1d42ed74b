// Package enricher is the middle stage: it takes order.received events in
// batches of up to 100, fetches their waybills with one batchGetOrder call,
// and publishes order.enriched (or order.failed for a cancelled waybill or a
// permanent per-item error).
package enricher
