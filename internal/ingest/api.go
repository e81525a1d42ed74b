package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/clients/wechat/push"
	"github.com/fulfill/pipeline/pkg/events"
)

// MaxBodyBytes bounds a POST /v1/orders body.
const MaxBodyBytes = 1 << 20

// OrderRequest is the body of POST /v1/orders.
type OrderRequest struct {
	// Shop is the shop the order belongs to; it may be left out when the
	// deployment serves one shop or the bearer token is a shop's own.
	Shop       string           `json:"shop,omitempty"`
	OrderID    string           `json:"order_id"`
	DeliveryID string           `json:"delivery_id"`
	WaybillID  string           `json:"waybill_id,omitempty"`
	Products   []events.Product `json:"products"`
}

// OrderResponse is the 202 answer.
type OrderResponse struct {
	EventID   string `json:"event_id"`
	Shop      string `json:"shop"`
	OrderID   string `json:"order_id"`
	Duplicate bool   `json:"duplicate"`
}

// APIError is the JSON body of every 4xx/5xx answer.
type APIError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	// EventID is the received event that stands, on 409.
	EventID string `json:"event_id,omitempty"`
}

// DefaultStoreTimeout is how long the API waits for JetStream to store an
// order before answering 503 (retry).
const DefaultStoreTimeout = 10 * time.Second

// API is the order HTTP API: POST /v1/orders with a bearer token. Token
// (INGEST_API_TOKEN) may post for every shop; a shop's own token (SetShops)
// only for that shop.
type API struct {
	In    *Ingester
	Token string
	shops atomic.Pointer[apiShops]
	push  atomic.Pointer[map[string]push.Keys]
	// StoreTimeout bounds the wait for JetStream to store an order, so a
	// client hears 503 (and retries) while NATS is away instead of hanging
	// until the write timeout; 0 means DefaultStoreTimeout.
	StoreTimeout time.Duration
}

// Handler routes the API.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	tr := a.In.tracer()
	mux.Handle("POST /v1/orders", tr.Handler("POST /v1/orders", http.HandlerFunc(a.postOrder)))
	mux.HandleFunc("GET /v1/wechat/push/{shop}", a.pushURLCheck)
	mux.Handle("POST /v1/wechat/push/{shop}", tr.Handler("POST /v1/wechat/push/{shop}", http.HandlerFunc(a.pushMessage)))
	return mux
}

// NewServer is the API's HTTP server with timeouts against slow clients
// (slowloris) and a header size bound.
func (a *API) NewServer() *http.Server {
	return &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// apiShops is what the API knows of the shops: which it serves and whose
// own token is which, by the token's SHA-256 so that looking one up takes
// the same time whatever the token shares with another.
type apiShops struct {
	ids     []string
	served  map[string]bool
	byToken map[[sha256.Size]byte]string
}

// SetShops sets the shops the API serves, each with its own API token or
// "" for none; it is called again on every registry reload. Before the
// first call the API serves the one shop events.DefaultShop.
func (a *API) SetShops(tokens map[string]string) {
	s := &apiShops{served: make(map[string]bool, len(tokens)), byToken: make(map[[sha256.Size]byte]string)}
	for id, tok := range tokens {
		s.ids = append(s.ids, id)
		s.served[id] = true
		if tok != "" {
			s.byToken[sha256.Sum256([]byte(tok))] = id
		}
	}
	slices.Sort(s.ids)
	a.shops.Store(s)
}

func (a *API) currentShops() *apiShops {
	if s := a.shops.Load(); s != nil {
		return s
	}
	return &apiShops{ids: []string{events.DefaultShop}, served: map[string]bool{events.DefaultShop: true}}
}

// authorise names the shop a bearer token is limited to: "" for the global
// token, which may post for any shop. ok is false for no or a wrong token.
func (a *API) authorise(r *http.Request, shops *apiShops) (scope string, ok bool) {
	scheme, got, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || got == "" {
		return "", false
	}
	if a.Token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) == 1 {
		return "", true
	}
	shop, ok := shops.byToken[sha256.Sum256([]byte(got))]
	return shop, ok
}

// shopOf is the shop an order is for: the body's, else the token's own
// shop, else the only shop served. It answers the HTTP status to refuse
// with otherwise.
func (s *apiShops) shopOf(asked, scope string) (string, int, error) {
	switch {
	case asked == "" && scope != "":
		return scope, 0, nil
	case asked == "" && len(s.ids) == 1:
		return s.ids[0], 0, nil
	case asked == "":
		return "", http.StatusBadRequest, fmt.Errorf("shop is required: this deployment serves %d shops", len(s.ids))
	case scope != "" && asked != scope:
		return "", http.StatusForbidden, fmt.Errorf("this token is shop %s's own and may not post for shop %s", scope, asked)
	case !s.served[asked]:
		return "", http.StatusNotFound, fmt.Errorf("shop %s is not one this deployment serves", asked)
	}
	return asked, 0, nil
}

func (a *API) postOrder(w http.ResponseWriter, r *http.Request) {
	shops := a.currentShops()
	scope, ok := a.authorise(r, shops)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fulfill"`)
		writeJSON(w, http.StatusUnauthorized, APIError{Error: "missing or wrong bearer token"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, APIError{Error: fmt.Sprintf("body larger than %d bytes", MaxBodyBytes)})
			return
		}
		// Not err itself: it names this server's and the client's
		// socket addresses.
		msg := "the body could not be read"
		if errors.Is(err, os.ErrDeadlineExceeded) {
			msg = "the body did not arrive in time"
		}
		writeJSON(w, http.StatusBadRequest, APIError{Error: msg})
		return
	}
	req, field, err := DecodeOrderRequest(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, APIError{Error: err.Error(), Field: field})
		return
	}
	shop, status, err := shops.shopOf(req.Shop, scope)
	if err != nil {
		writeJSON(w, status, APIError{Error: err.Error(), Field: "shop"})
		return
	}
	timeout := a.StoreTimeout
	if timeout <= 0 {
		timeout = DefaultStoreTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	id, dup, err := a.In.Received(ctx, events.SourceAPI, shop, req.OrderID, events.Received{
		DeliveryID: req.DeliveryID, WaybillID: req.WaybillID, Products: req.Products, Via: events.ViaAPI,
	})
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		writeJSON(w, http.StatusConflict, APIError{Error: conflict.Error(), EventID: conflict.EventID})
		return
	case errors.Is(err, nats.ErrMaxPayload):
		writeJSON(w, http.StatusRequestEntityTooLarge, APIError{Error: "the order's event is larger than the NATS server's max payload; it can never be stored"})
		return
	case errors.Is(err, pipeline.ErrStreamFull):
		a.In.log.Error().Err(err).Str("shop", shop).Str("order_id", req.OrderID).Msg("the ORDERS stream is full")
		writeJSON(w, http.StatusServiceUnavailable, APIError{Error: "the ORDERS stream is full (STREAM_MAX_BYTES): nothing more can be taken in until old events age out or the operator raises the bound; retry later"})
		return
	case err != nil:
		a.In.log.Error().Err(err).Str("shop", shop).Str("order_id", req.OrderID).Msg("publish order from API")
		writeJSON(w, http.StatusServiceUnavailable, APIError{Error: "the order could not be stored; retry"})
		return
	}
	writeJSON(w, http.StatusAccepted, OrderResponse{EventID: id, Shop: shop, OrderID: req.OrderID, Duplicate: dup})
}

// orderRequestKeys are the field names of an OrderRequest body, by path.
var orderRequestKeys = map[string][]string{
	"":           {"shop", "order_id", "delivery_id", "waybill_id", "products"},
	"products[]": {"product_id", "sku_id", "product_cnt"},
}

// DecodeOrderRequest parses and checks a POST /v1/orders body. On error it
// also names the offending field, when there is one.
func DecodeOrderRequest(body []byte) (*OrderRequest, string, error) {
	// encoding/json would turn invalid UTF-8 into U+FFFD and go on.
	if !utf8.Valid(body) {
		return nil, "", errors.New("malformed JSON: the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req OrderRequest
	if err := dec.Decode(&req); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if typeErr.Field == "" {
				return nil, "", fmt.Errorf("the body must be a JSON object, got %s", typeErr.Value)
			}
			return nil, typeErr.Field, fmt.Errorf("field %s: want a JSON %s, got %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			f = strings.Trim(f, `"`)
			return nil, f, fmt.Errorf("unknown field %s", f)
		}
		return nil, "", fmt.Errorf("malformed JSON: %w", err)
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return nil, "", errors.New("malformed JSON: trailing data after the object")
	}
	if key, err := checkKeys(body, orderRequestKeys); err != nil {
		return nil, key, err
	}
	if req.Shop != "" {
		if err := events.ValidateShopID(req.Shop); err != nil {
			return nil, "shop", err
		}
	}
	if err := events.ValidateOrderID(req.OrderID); err != nil {
		return nil, "order_id", err
	}
	if req.DeliveryID == "" {
		return nil, "delivery_id", errors.New("delivery_id is required (the carrier id, e.g. SF)")
	}
	if len(req.Products) == 0 {
		return nil, "products", errors.New("products is required: at least one {product_id, sku_id, product_cnt}")
	}
	for i, p := range req.Products {
		if err := p.Validate(); err != nil {
			return nil, fmt.Sprintf("products[%d]", i), err
		}
	}
	// The same bounds the enricher and shipper hold their input to: an
	// order taken in here can be stored at every stage.
	r := events.Received{DeliveryID: req.DeliveryID, WaybillID: req.WaybillID, Products: req.Products}
	if err := r.Validate(); err != nil {
		return nil, fieldOf(err), err
	}
	return &req, "", nil
}

// fieldOf is the field a payload validator's error names first.
func fieldOf(err error) string {
	msg := err.Error()
	if i := strings.IndexAny(msg, " :"); i > 0 {
		return msg[:i]
	}
	return ""
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int", "int64":
		return "integer"
	case "slice":
		return "array"
	case "struct":
		return "object"
	}
	return goKind
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
