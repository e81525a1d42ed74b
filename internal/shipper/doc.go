// Package shipper is the last stage: for every order.enriched event it calls
// Channels delivery/send, retries what the platform says is transient, waits
// on what needs a person, and ends the order in exactly one terminal event,
// order.shipped or order.failed.
package shipper
