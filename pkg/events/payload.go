package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds of an order's fields. The platforms' values are far shorter; the
// bounds keep every event well under the server's max payload (1 MiB by
// default), so an order that could be taken in can always be stored at
// every stage, and a batch of 100 in one batchGetOrder call.
const (
	MaxDeliveryIDLen = 64
	MaxWaybillIDLen  = 64
	MaxProductIDLen  = 64
	MaxProducts      = 200
	MaxProductCnt    = 100_000
)

// ErrInvalidField is what the payload validators' errors match (with
// errors.Is); their text names the field and what is wrong with it.
var ErrInvalidField = errors.New("invalid field")

// fieldError is a payload validator's error.
type fieldError struct{ msg string }

func (e *fieldError) Error() string        { return e.msg }
func (e *fieldError) Is(target error) bool { return target == ErrInvalidField }

func invalid(format string, args ...any) error {
	return &fieldError{msg: fmt.Sprintf(format, args...)}
}

// checkText refuses an empty, over-long, not UTF-8 or control-character
// value of field.
func checkText(field, v string, maxLen int) error {
	switch {
	case v == "":
		return invalid("%s missing", field)
	case len(v) > maxLen:
		return invalid("%s is %d bytes, at most %d", field, len(v), maxLen)
	case !utf8.ValidString(v):
		return invalid("%s is not valid UTF-8", field)
	}
	for i, r := range v {
		if unicode.IsControl(r) {
			return invalid("%s has a control character (%U) at byte %d", field, r, i)
		}
	}
	return nil
}

// Product is one line of an order as delivery/send wants it (the order's
// sku_cnt becomes product_cnt).
type Product struct {
	ProductID  string `json:"product_id"`
	SkuID      string `json:"sku_id"`
	ProductCnt int    `json:"product_cnt"`
}

// Validate checks the product line.
func (p Product) Validate() error {
	if err := checkText("product_id", p.ProductID, MaxProductIDLen); err != nil {
		return err
	}
	if err := checkText("sku_id", p.SkuID, MaxProductIDLen); err != nil {
		return err
	}
	if p.ProductCnt < 1 || p.ProductCnt > MaxProductCnt {
		return invalid("product_cnt %d must be 1 to %d", p.ProductCnt, MaxProductCnt)
	}
	return nil
}

// Received is the payload of order.received: an order waiting for shipment.
type Received struct {
	DeliveryID string    `json:"delivery_id"`
	WaybillID  string    `json:"waybill_id,omitempty"`
	Products   []Product `json:"products"`
	// OrderStatus is the platform's status when polled (20 awaiting shipment).
	OrderStatus int `json:"order_status,omitempty"`
	// UpdateTime is the platform's update_time, unix seconds.
	UpdateTime int64 `json:"update_time,omitempty"`
	// Via says how the pipeline learnt of the order: ViaPoll (order/list
	// polling), ViaPush (a pushed order message), ViaAPI.
	Via string `json:"via,omitempty"`
}

// How an order came in, as Received.Via says.
const (
	ViaPoll = "poll"
	ViaPush = "push"
	ViaAPI  = "api"
)

// Validate checks what the enricher and shipper need, within the bounds.
func (r *Received) Validate() error {
	if err := checkText("delivery_id", r.DeliveryID, MaxDeliveryIDLen); err != nil {
		return err
	}
	if r.WaybillID != "" {
		if err := checkText("waybill_id", r.WaybillID, MaxWaybillIDLen); err != nil {
			return err
		}
	}
	return validateProducts(r.Products)
}

func validateProducts(ps []Product) error {
	if len(ps) == 0 {
		return invalid("products missing")
	}
	if len(ps) > MaxProducts {
		return invalid("products: %d lines, at most %d", len(ps), MaxProducts)
	}
	for i, p := range ps {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("products[%d]: %w", i, err)
		}
	}
	return nil
}

// WaybillField is one key/value of a waybill's data.
type WaybillField struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Enriched is the payload of order.enriched: the order with its waybill.
type Enriched struct {
	DeliveryID  string         `json:"delivery_id"`
	WaybillID   string         `json:"waybill_id"`
	WaybillData []WaybillField `json:"waybill_data"`
	PrintHTML   string         `json:"print_html"`
	OrderStatus int            `json:"order_status"`
	Products    []Product      `json:"products"`
	// ReceivedAt is the occurred_at of the order's received event, carried
	// so the shipper can measure received to shipped without reading the
	// stream; absent from events of enrichers that predate it.
	ReceivedAt time.Time `json:"received_at,omitzero"`
}

// Validate checks what the shipper needs.
func (e *Enriched) Validate() error {
	if e.DeliveryID == "" {
		return errors.New("delivery_id missing")
	}
	if e.WaybillID == "" {
		return errors.New("waybill_id missing")
	}
	return validateProducts(e.Products)
}

// Shipped is the payload of order.shipped, a terminal event.
type Shipped struct {
	DeliveryID string `json:"delivery_id"`
	WaybillID  string `json:"waybill_id"`
	// Attempts counts the deliveries of the order's input to the stage
	// (redeliveries after a wait, a crash, a busy lease included); Calls
	// the platform calls of the delivery that ended the order.
	Attempts int `json:"attempts"`
	Calls    int `json:"calls,omitempty"`
	// AlreadyShipped is set when the platform answered 109001: the order was
	// shipped by an earlier attempt whose result was lost (a crash, a
	// timeout), so this is a success, not a second shipment.
	AlreadyShipped bool `json:"already_shipped,omitempty"`
	// Elsewhere is set when the platform said the order was delivered
	// (a channels_ec_order_deliver push) before this pipeline shipped it:
	// recorded so that it is never sent, not a call of ours.
	Elsewhere bool `json:"shipped_elsewhere,omitempty"`
}

// Failed is the payload of order.failed, a terminal event.
type Failed struct {
	// Stage is the component that gave up.
	Stage   Component `json:"stage"`
	Errcode int       `json:"errcode"`
	Errmsg  string    `json:"errmsg"`
	// Attempts counts the deliveries of the order's input to the stage;
	// Calls the platform calls of the delivery that ended it (shipper).
	Attempts int `json:"attempts"`
	Calls    int `json:"calls,omitempty"`
	// Reason says what happened and what a person can do about it.
	Reason string `json:"reason"`
	// Raw holds the original message bytes when they could not be parsed
	// (the first 256 KiB; RawSize is the whole length).
	Raw     []byte `json:"raw,omitempty"`
	RawSize int    `json:"raw_size,omitempty"`
	// OriginalSubject and OriginalSeq locate the message that failed.
	OriginalSubject string `json:"original_subject,omitempty"`
	OriginalSeq     uint64 `json:"original_seq,omitempty"`
	// CancelType is set when the order was cancelled on the platform
	// (1 by the buyer, 2 unpaid in time, 3 after-sale): final, whatever
	// copy of the order comes later; such an order is never sent, and
	// never re-driven.
	CancelType int `json:"cancel_type,omitempty"`
}

// Cancelled reports whether the failure is the order's cancellation.
func (f *Failed) Cancelled() bool { return f != nil && f.CancelType != 0 }

// Component is a process of the pipeline, as named in a failed event's
// stage field: the one that gave up on the order.
type Component string

// The components.
const (
	ComponentIngest   Component = "ingest"
	ComponentEnricher Component = "enricher"
	ComponentShipper  Component = "shipper"
)

// Valid reports whether c is one of the components.
func (c Component) Valid() bool {
	switch c {
	case ComponentIngest, ComponentEnricher, ComponentShipper:
		return true
	}
	return false
}

// Input is the stage whose events c consumes (enricher: received, shipper:
// enriched): what a re-drive of an order c failed sends through c again.
// Ingest consumes no stage.
func (c Component) Input() (Stage, bool) {
	switch c {
	case ComponentEnricher:
		return StageReceived, true
	case ComponentShipper:
		return StageEnriched, true
	}
	return "", false
}

// Logistics is the payload of order.logistics: a status change of a
// logistics order of another shop, from vv-tool.
type Logistics struct {
	ShopID      string    `json:"shop_id"`
	Tid         string    `json:"tid"`
	OrderCode   string    `json:"order_code,omitempty"`
	Status      string    `json:"status"`
	CompanyName string    `json:"company_name,omitempty"`
	OutSid      string    `json:"out_sid,omitempty"`
	ItemTitle   string    `json:"item_title,omitempty"`
	SubTids     []string  `json:"sub_tids,omitempty"`
	Created     time.Time `json:"created"`
	Modified    time.Time `json:"modified"`
}

// Push is the payload of order.push: one message the platform pushed about
// the order, verified and decrypted, kept whole in Message.
type Push struct {
	// Event is the message's Event, e.g. channels_ec_order_pay.
	Event string `json:"event"`
	// CreateTime is the message's CreateTime, unix seconds.
	CreateTime int64 `json:"create_time"`
	// CancelType (channels_ec_order_cancel), FinishDelivery
	// (channels_ec_order_deliver) and ExtType
	// (channels_ec_order_ext_info_update) copy the message's order_info.
	CancelType     int `json:"cancel_type,omitempty"`
	FinishDelivery int `json:"finish_delivery,omitempty"`
	ExtType        int `json:"ext_type,omitempty"`
	// Message is the decrypted message as the platform sent it.
	Message json.RawMessage `json:"message"`
}
