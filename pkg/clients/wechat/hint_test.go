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
		{40001, "access token invalid"},
		{40014, "access token not valid"},
		{42001, "access token expired"},
		{45009, "daily API quota used up"},
		{45011, "per-minute API quota reached"},
		{606046, "the order cannot be shipped by this method"},
		{268545001, "SN code invalid"},
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
		{40013, unknown},
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

// Errcodes says what Classify does with each known code, ordered by class.
func TestErrcodesFollowClassify(t *testing.T) {
	list := Errcodes()
	if len(list) != len(hints) {
		t.Fatalf("%d errcodes listed, %d described", len(list), len(hints))
	}
	for i, e := range list {
		if got := Classify(&APIError{Code: e.Code}); got != e.Class {
			t.Errorf("errcode %d listed as %s, Classify says %s", e.Code, e.Class, got)
		}
		if i > 0 && (list[i-1].Class > e.Class || list[i-1].Class == e.Class && list[i-1].Code >= e.Code) {
			t.Errorf("not ordered by class then code at %d: %v %v", i, list[i-1], e)
		}
	}
}
