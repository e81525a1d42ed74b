package sandbox

import "fmt"

// MaxBatchGetOrder is the most order_list items batchGetOrder accepts (seed 000).
const MaxBatchGetOrder = 100

// waybillQuery is one order_list item of batchGetOrder and the body of getOrder
// (seeds 000, 001). order_id is accepted as a JSON string or number.
type waybillQuery struct {
	OrderID    wireID `json:"order_id"`
	OpenID     string `json:"openid"`
	DeliveryID string `json:"delivery_id"`
	WaybillID  string `json:"waybill_id"`
}

func (q *waybillQuery) orderIDs() []string { return []string{string(q.OrderID)} }

// batchRequest is the body of batchGetOrder.
type batchRequest struct {
	OrderList []waybillQuery `json:"order_list"`
}

func (r *batchRequest) orderIDs() []string {
	ids := make([]string, len(r.OrderList))
	for i, q := range r.OrderList {
		ids[i] = string(q.OrderID)
	}
	return ids
}

// decodeBatchRequest decodes a batchGetOrder body.
func decodeBatchRequest(body []byte) (*batchRequest, error) {
	var req batchRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// decodeWaybillQuery decodes a getOrder body.
func decodeWaybillQuery(body []byte) (*waybillQuery, error) {
	var req waybillQuery
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// waybillField is one waybill_data element.
type waybillField struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// waybillJSON is one order_list element of the batchGetOrder answer (seed 000) and,
// with its errcode, the getOrder answer (seed 001). An item in error carries errcode,
// errmsg and the ids it was asked for only.
type waybillJSON struct {
	Errcode     int            `json:"errcode"`
	Errmsg      string         `json:"errmsg"`
	OrderID     string         `json:"order_id"`
	DeliveryID  string         `json:"delivery_id"`
	WaybillID   string         `json:"waybill_id"`
	PrintHTML   string         `json:"print_html,omitempty"`
	WaybillData []waybillField `json:"waybill_data,omitempty"`
	OrderStatus *int           `json:"order_status,omitempty"`
}

// batchResponse is the batchGetOrder answer.
type batchResponse struct {
	wxStatus
	OrderList []waybillJSON `json:"order_list"`
}

// lookupWaybillLocked answers one query of app: the waybill, or an item error
// (itemCode from a fault when non-zero). The waybill of another app's order is one
// the app does not have (CodeWaybillNotFound). s.mu must be held.
func (s *Sandbox) lookupWaybillLocked(app *appState, q waybillQuery, itemCode int) waybillJSON {
	id := string(q.OrderID)
	item := waybillJSON{OrderID: id, DeliveryID: q.DeliveryID, WaybillID: q.WaybillID}
	w, ok := s.waybills[id]
	if _, mine := s.appOrderLocked(app, id); !mine {
		w, ok = nil, false
	}
	switch {
	case itemCode != 0:
		item.Errcode, item.Errmsg = itemCode, wxMessage(itemCode, "")
	case id == "":
		item.Errcode, item.Errmsg = 40097, wxMessage(40097, "order_id is required")
	case q.DeliveryID == "":
		item.Errcode, item.Errmsg = 40097, wxMessage(40097, "delivery_id is required")
	case !ok:
		item.Errcode, item.Errmsg = CodeWaybillNotFound, wxMessage(CodeWaybillNotFound, "")
	case q.DeliveryID != w.deliveryID || (q.WaybillID != "" && q.WaybillID != w.waybillID):
		item.Errcode, item.Errmsg = CodeWaybillNotFound, wxMessage(CodeWaybillNotFound,
			fmt.Sprintf("delivery_id/waybill_id do not match the order's waybill (%s)", w.deliveryID))
	default:
		status := w.status
		item = waybillJSON{
			Errmsg:      "ok",
			OrderID:     w.orderID,
			DeliveryID:  w.deliveryID,
			WaybillID:   w.waybillID,
			PrintHTML:   w.printHTML,
			WaybillData: make([]waybillField, len(w.data)),
			OrderStatus: &status,
		}
		for i, kv := range w.data {
			item.WaybillData[i] = waybillField{Key: kv[0], Value: kv[1]}
		}
	}
	return item
}

// batchGetLocked answers batchGetOrder; items holds per-item errcodes from faults.
// s.mu must be held.
func (s *Sandbox) batchGetLocked(app *appState, req *batchRequest, items map[string]int) reply {
	switch n := len(req.OrderList); {
	case n == 0:
		return wxErr(40097, "order_list is required")
	case n > MaxBatchGetOrder:
		return wxErr(40097, fmt.Sprintf("order_list has %d items, at most %d allowed", n, MaxBatchGetOrder))
	}
	resp := batchResponse{wxStatus: wxStatus{Errmsg: "ok"}, OrderList: make([]waybillJSON, len(req.OrderList))}
	for i, q := range req.OrderList {
		resp.OrderList[i] = s.lookupWaybillLocked(app, q, items[string(q.OrderID)])
	}
	return jsonReply(0, resp)
}

// getWaybillLocked answers getOrder: one waybill, or its errcode for the whole call.
// s.mu must be held.
func (s *Sandbox) getWaybillLocked(app *appState, q *waybillQuery) reply {
	item := s.lookupWaybillLocked(app, *q, 0)
	if item.Errcode != 0 {
		return jsonReply(item.Errcode, wxStatus{Errcode: item.Errcode, Errmsg: item.Errmsg})
	}
	return jsonReply(0, item)
}
