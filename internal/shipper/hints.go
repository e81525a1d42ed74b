package shipper

import "fmt"

// hints says, for the delivery/send codes of the platform's table, what
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

func hint(code int) string {
	if h, ok := hints[code]; ok {
		return h
	}
	return "see the platform's error table"
}

// describe names what the platform answered: its errcode and what it means,
// or, for an answer without an errcode (an HTTP error page), the error.
func describe(code int, err error) string {
	if code != 0 || err == nil {
		return fmt.Sprintf("errcode %d: %s", code, hint(code))
	}
	return err.Error()
}
