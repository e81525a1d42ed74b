package wechat

// hints says, for the delivery/send codes of the platform's error table, what
// went wrong in words an operator can act on.
var hints = map[int]string{
	-1:        "platform busy",
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
