package wechat

import (
	"context"
	"fmt"
)

// MaxBatchGetOrder is the most queries one batchGetOrder call may carry.
const MaxBatchGetOrder = 100

// Waybill statuses (field Waybill.OrderStatus).
const (
	// WaybillStatusNormal: 0, the waybill is valid.
	WaybillStatusNormal = 0
	// WaybillStatusCancelled: 1, the waybill was cancelled.
	WaybillStatusCancelled = 1
)

// WaybillQuery names one logistics waybill by order id and carrier.
type WaybillQuery struct {
	OrderID    string `json:"order_id"`
	OpenID     string `json:"openid,omitempty"`
	DeliveryID string `json:"delivery_id"`
	WaybillID  string `json:"waybill_id,omitempty"`
}

// WaybillField is one key/value of a waybill's data.
type WaybillField struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Waybill is the logistics data of one order. In a batchGetOrder answer each
// waybill carries its own Errcode; check it with Err.
type Waybill struct {
	Errcode     int            `json:"errcode"`
	Errmsg      string         `json:"errmsg"`
	OrderID     ID             `json:"order_id"`
	DeliveryID  string         `json:"delivery_id"`
	WaybillID   string         `json:"waybill_id"`
	PrintHTML   string         `json:"print_html"`
	WaybillData []WaybillField `json:"waybill_data"`
	OrderStatus int            `json:"order_status"`
}

// Err returns nil when the waybill's Errcode is 0, else an *APIError for
// EndpointBatchGetOrder with that code and message.
func (w *Waybill) Err() error {
	if w.Errcode == 0 {
		return nil
	}
	return &APIError{Endpoint: EndpointBatchGetOrder, Code: w.Errcode, Msg: Redact(w.Errmsg)}
}

// Cancelled reports whether the waybill was cancelled (OrderStatus 1).
func (w *Waybill) Cancelled() bool { return w.OrderStatus == WaybillStatusCancelled }

// batchGetRequest is the body of batchGetOrder.
type batchGetRequest struct {
	OrderList []WaybillQuery `json:"order_list"`
}

// batchGetResponse is the answer of batchGetOrder.
type batchGetResponse struct {
	OrderList []Waybill `json:"order_list"`
}

// BatchGetOrder calls POST /cgi-bin/express/business/order/batchget with
// {"order_list":[…]}. More than MaxBatchGetOrder queries fail with
// ErrBatchTooLarge before any HTTP call; no queries return no waybills without a
// call. A whole-call errcode is an error; per-item errcodes stay in the waybills
// (see Waybill.Err).
func (c *Client) BatchGetOrder(ctx context.Context, orders []WaybillQuery) ([]Waybill, error) {
	if len(orders) > MaxBatchGetOrder {
		return nil, fmt.Errorf("%w: got %d", ErrBatchTooLarge, len(orders))
	}
	if len(orders) == 0 {
		return nil, nil
	}
	var waybills []Waybill
	err := c.call(ctx, EndpointBatchGetOrder, batchGetRequest{OrderList: orders}, func(status int, raw []byte) (err error) {
		waybills, err = decodeBatchGet(status, raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return waybills, nil
}

// decodeBatchGet decodes a batchGetOrder answer.
func decodeBatchGet(status int, raw []byte) ([]Waybill, error) {
	var resp batchGetResponse
	if err := decodeResponse(EndpointBatchGetOrder, status, raw, &resp); err != nil {
		return nil, err
	}
	return resp.OrderList, nil
}

// GetWaybill calls POST /cgi-bin/express/business/order/get for one waybill.
func (c *Client) GetWaybill(ctx context.Context, q WaybillQuery) (*Waybill, error) {
	var w *Waybill
	err := c.call(ctx, EndpointGetOrder, q, func(status int, raw []byte) (err error) {
		w, err = decodeWaybill(status, raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// decodeWaybill decodes a getOrder answer.
func decodeWaybill(status int, raw []byte) (*Waybill, error) {
	var w Waybill
	if err := decodeResponse(EndpointGetOrder, status, raw, &w); err != nil {
		return nil, err
	}
	return &w, nil
}
