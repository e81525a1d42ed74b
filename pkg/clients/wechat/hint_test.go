package wechat

import "testing"

// TestHint checks the words for every code the package describes, and the
// pointer to the platform's table for the others.
func TestHint(t *testing.T) {
	known := []struct {
		code int
		want string
	}{
		{-1, "platform busy"},
		{40097, "request parameters invalid"},
		{47001, "request body malformed"},
		{48001, "the app is not authorised for delivery/send"},
		{100002, "the order does not exist"},
		{100003, "order updated too often (concurrent requests)"},
		{101100, "the order's status does not allow shipping"},
		{108009, "an after-sale request is open"},
		{109000, "products do not match the order"},
		{109001, "already shipped"},
		{109002, "no products in the request"},
		{109205, "an online logistics order exists; self-shipping not allowed"},
		{606003, "the shop has no default return address"},
		{606004, "delivery_id is not a valid carrier"},
		{606005, "waybill_id is not valid"},
		{606008, "deliver_type does not fit the order"},
		{606031, "product_id or sku_id not in the order"},
		{606049, "the order is on a risk hold; wait for the platform"},
		{606060, "subsidy order needs an SN code"},
		{10020115, "the buyer asked to change the address"},
		{10020276, "a SKU change is pending"},
		{268545009, "SN lock failed (retryable)"},
	}
	const unknown = "see the platform's error table"
	tests := append(known, []struct {
		code int
		want string
	}{
		{0, unknown},
		{40001, unknown}, // a token code: the client refreshes, nobody reads a hint
		{45009, unknown},
		{999999, unknown},
	}...)
	for _, tt := range tests {
		if got := Hint(tt.code); got != tt.want {
			t.Errorf("Hint(%d) = %q, want %q", tt.code, got, tt.want)
		}
	}
	// Every described code is in the table above: a new one needs its test.
	if len(hints) != len(known) {
		t.Errorf("%d codes described, %d tested", len(hints), len(known))
	}
}
