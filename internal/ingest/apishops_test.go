package ingest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
)

// TestAPIShops: the global token posts for any shop served; a shop's own
// token only for that shop (and names it when the body does not); an
// order of no shop, or of a shop not served, is refused and stores nothing.
func TestAPIShops(t *testing.T) {
	_, js, stream := jstest.StartStream(t)
	in := ingest.NewIngester(stream, pipeline.NewPublisher(js), time.Hour, zerolog.Nop(), service.NewMetrics())
	api := &ingest.API{In: in, Token: testToken}
	api.SetShops(map[string]string{"acme": "acme-own-token", "bolt": "bolt-own-token", "corp": ""})
	hs := httptest.NewServer(api.Handler())
	t.Cleanup(hs.Close)
	a := &apiEnv{URL: hs.URL, JS: js, Stream: stream}

	tests := []struct {
		name     string
		token    string
		shop     string // the body's shop field; "" leaves it out
		want     int
		wantShop string // the shop the order is stored under, on 202
	}{
		{"global token names a shop", testToken, "bolt", http.StatusAccepted, "bolt"},
		{"global token, shop without its own token", testToken, "corp", http.StatusAccepted, "corp"},
		{"own token names its shop", "acme-own-token", "acme", http.StatusAccepted, "acme"},
		{"own token, shop left out", "acme-own-token", "", http.StatusAccepted, "acme"},
		{"own token for another shop", "acme-own-token", "bolt", http.StatusForbidden, ""},
		{"global token, shop left out among three", testToken, "", http.StatusBadRequest, ""},
		{"global token, shop not served", testToken, "zeta", http.StatusNotFound, ""},
		{"shop id not of the grammar", testToken, "Acme", http.StatusBadRequest, ""},
		{"another shop's token is not the global one", "bolt-own-token", "acme", http.StatusForbidden, ""},
		{"no such token", "corp-own-token", "corp", http.StatusUnauthorized, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "S-" + string(rune('a'+i))
			body := map[string]any{"order_id": id, "delivery_id": "SF",
				"products": []map[string]any{{"product_id": "p1", "sku_id": "s1", "product_cnt": 1}}}
			if tt.shop != "" {
				body["shop"] = tt.shop
			}
			raw, _ := json.Marshal(body)
			before := a.msgs(t, "")
			r := a.post(t, "Bearer "+tt.token, raw)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.want, r.Body)
			}
			if tt.want != http.StatusAccepted {
				var e ingest.APIError
				if err := json.Unmarshal(r.Body, &e); err != nil || e.Error == "" {
					t.Errorf("body %q is not a JSON error", r.Body)
				}
				if n := a.msgs(t, ""); n != before {
					t.Errorf("a refused order stored %d messages", n-before)
				}
				return
			}
			var out ingest.OrderResponse
			if err := json.Unmarshal(r.Body, &out); err != nil || out.Shop != tt.wantShop {
				t.Fatalf("202 body %s: shop %q, want %q (%v)", r.Body, out.Shop, tt.wantShop, err)
			}
			if n := a.msgs(t, "orders.received.api."+tt.wantShop+"."+id); n != 1 {
				t.Errorf("%d messages on shop %s's subject, want 1", n, tt.wantShop)
			}
		})
	}
}

// TestAPIOneShopNeedsNoShopField: a deployment of one shop (the default,
// configured by environment) takes today's bodies unchanged.
func TestAPIOneShopNeedsNoShopField(t *testing.T) {
	a := startAPI(t)
	out := a.postOK(t, orderBody("ONE-1"))
	if out.Shop != "default" {
		t.Fatalf("shop %q, want default", out.Shop)
	}
	if n := a.msgs(t, subjectOf("ONE-1")); n != 1 {
		t.Fatalf("%d messages on %s", n, subjectOf("ONE-1"))
	}
}
