// Package wechat is the pipeline's client for the WeChat platform APIs it calls:
// the Channels shop (微信小店) order list, order detail and delivery/send endpoints,
// and the logistics waybill endpoints batchGetOrder and getOrder.
//
// Every business call is a POST of JSON to DefaultBaseURL (or WithBaseURL) plus the
// endpoint path, with the access token in the query string as ?access_token=…. The
// token comes from a TokenSource: StaticToken for a fixed (for example third-party
// authorizer) token, or StableTokenSource, which fetches and caches a token from
// POST /cgi-bin/stable_token with a safety margin and refreshes it once, for all
// concurrent callers together, when the platform rejects it.
//
// When the platform answers errcode 40001, 40014 or 42001 the client asks the
// TokenSource for a fresh token and replays the request exactly once.
//
// Errors are inspected with errors.Is and errors.As: *APIError carries the
// platform's errcode, ErrBadResponse marks an undecodable body, ErrHTTPStatus a
// non-2xx HTTP status. Classify maps any error returned by this package to a Class
// that tells the caller what to do next (retry, refresh, treat as done, wait for a
// person, give up).
//
// The access token never appears in an error string: URLs inside errors are passed
// through Redact. Platform ids (order, product and SKU ids) are kept as strings byte
// for byte in ID, whether the platform sends them as JSON strings or numbers.
package wechat
