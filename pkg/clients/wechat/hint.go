package wechat

import (
	"cmp"
	"slices"
)

// hints says, for the delivery/send codes of the platform's error table, what
// went wrong in words an operator can act on.
var hints = map[int]string{
	-1:        "platform busy",
	40001:     "access token invalid",
	40014:     "access token not valid",
	42001:     "access token expired",
	45009:     "daily API quota used up",
	45011:     "per-minute API quota reached",
	606046:    "the order cannot be shipped by this method",
	268545001: "SN code invalid",
	40097:     "request parameters invalid",
	47001:     "request body malformed",
	48001:     "the app is not authorised for delivery/send",
	100002:    "the order does not exist",
	100003:    "order updated too often (concurrent requests)",
	101100:    "the order's status does not allow shipping",
	108009:    "an after-sale request is open",
	109000:    "products do not match the order",
	109001:    "already shipped",
	109002:    "no products in the request",
	109205:    "an online logistics order exists; self-shipping not allowed",
	606003:    "the shop has no default return address",
	606004:    "delivery_id is not a valid carrier",
	606005:    "waybill_id is not valid",
	606008:    "deliver_type does not fit the order",
	606031:    "product_id or sku_id not in the order",
	606049:    "the order is on a risk hold; wait for the platform",
	606060:    "subsidy order needs an SN code",
	10020115:  "the buyer asked to change the address",
	10020276:  "a SKU change is pending",
	268545009: "SN lock failed (retryable)",
}

// Hint says what the platform's errcode code means, in words an operator can
// act on: for the codes of delivery/send (and the platform's busy code -1) a
// short description, for any other code "see the platform's error table".
// The description goes beside the code (for example in a failed event's
// reason), not instead of it.
func Hint(code int) string {
	if h, ok := hints[code]; ok {
		return h
	}
	return "see the platform's error table"
}

// Errcode is a platform errcode this package knows: its class and what it
// means.
type Errcode struct {
	Code  int
	Class Class
	Hint  string
}

// Errcodes lists the errcodes this package knows, by class then code: the
// table the shipper's documentation and --help are generated from, so they
// say what Classify does.
func Errcodes() []Errcode {
	out := make([]Errcode, 0, len(hints))
	for code, h := range hints {
		out = append(out, Errcode{Code: code, Class: classifyCode(code), Hint: h})
	}
	slices.SortFunc(out, func(a, b Errcode) int {
		return cmp.Or(cmp.Compare(a.Class, b.Class), cmp.Compare(a.Code, b.Code))
	})
	return out
}
