// Package vvtool is the pipeline's client for the vv-tool ERP API, which exposes the
// logistics orders (物流订单) of Taobao and other shops authorised in vv-tool.
//
// The one endpoint used is POST DefaultBaseURL + DetailPath (/tool/erps/detail). The
// request body is multipart/form-data (shop_id, fields, paging, filters; dates as
// "yyyy-MM-dd HH:mm:ss" in Asia/Shanghai) and the account's token travels in the
// header "Authorization: Bearer <token>". Client.Detail fetches one page,
// Client.DetailAll walks every page of a query.
//
// The platform allows MaxRequestsPerSecond requests per second per account, across
// all of its shops. A Limiter enforces that as a sliding window; share one Limiter
// (WithLimiter) between every Client of the same account.
//
// Responses are decoded tolerantly, because the platform does not send what its own
// documentation says: ids documented as numbers arrive as strings (ID), the id list
// sub_tids arrives as {"number":[…]} (IDList), dates are "yyyy-MM-dd HH:mm:ss"
// strings in Asia/Shanghai (Time).
//
// Errors are inspected with errors.Is and errors.As: *APIError carries the platform's
// code (or, with Code 0, a non-2xx HTTP status, which also matches ErrHTTPStatus),
// ErrBadResponse marks an undecodable body, *TransportError a request that got no
// response. Classify maps every error of this package to ClassTransient (retry later)
// or ClassPermanent (an operator must act; the message says what to do). The token
// never appears in an error string.
package vvtool
