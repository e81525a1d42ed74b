package push

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
)

// Message is one decrypted order message.
type Message struct {
	ToUserName, FromUserName string
	CreateTime               int64
	MsgType, Event           string
	// OrderID is order_info.order_id as its decimal digits: a JSON number
	// above 2^53, never read as a float.
	OrderID string
	// CancelType is order_info.cancel_type of channels_ec_order_cancel
	// (1 by the buyer, 2 unpaid in time, 3 after-sale).
	CancelType int
	// FinishDelivery is order_info.finish_delivery of
	// channels_ec_order_deliver.
	FinishDelivery int
	// ExtType is order_info.type of channels_ec_order_ext_info_update (2 the
	// address changed, 7 the buyer urges shipment).
	ExtType int
	// Raw is the message as it was decrypted.
	Raw json.RawMessage
}

// number decodes a JSON number, a numeric string, a boolean (0/1) or null
// into an int: the platform's documents disagree on such fields' types.
type number int64

func (n *number) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch s := string(b); {
	case s == "null" || s == `""`:
		*n = 0
	case s == "true":
		*n = 1
	case s == "false":
		*n = 0
	default:
		s = string(bytes.Trim(b, `"`))
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not a whole number: %.20s", s)
		}
		*n = number(v)
	}
	return nil
}

// ParseMessage reads a decrypted message.
func ParseMessage(raw []byte) (*Message, error) {
	var m struct {
		ToUserName   string `json:"ToUserName"`
		FromUserName string `json:"FromUserName"`
		CreateTime   number `json:"CreateTime"`
		MsgType      string `json:"MsgType"`
		Event        string `json:"Event"`
		OrderInfo    *struct {
			OrderID        wechat.ID `json:"order_id"`
			CancelType     number    `json:"cancel_type"`
			FinishDelivery number    `json:"finish_delivery"`
			Type           number    `json:"type"`
		} `json:"order_info"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: the decrypted message is not the JSON of an order event", ErrMalformed)
	}
	msg := &Message{ToUserName: m.ToUserName, FromUserName: m.FromUserName, CreateTime: int64(m.CreateTime),
		MsgType: m.MsgType, Event: m.Event, Raw: json.RawMessage(bytes.Clone(raw))}
	if oi := m.OrderInfo; oi != nil {
		msg.OrderID, msg.CancelType, msg.FinishDelivery, msg.ExtType = string(oi.OrderID), int(oi.CancelType), int(oi.FinishDelivery), int(oi.Type)
	}
	return msg, nil
}

// DedupKey names the push for de-duplication: WeChat gives a push no id,
// and repeats it (up to 10 times) until answered success. Event, order and
// CreateTime tell pushes apart, and the type an ext_info_update.
func (m *Message) DedupKey() string {
	k := m.Event + ":" + m.OrderID + ":" + strconv.FormatInt(m.CreateTime, 10)
	if m.ExtType != 0 {
		k += ":" + strconv.Itoa(m.ExtType)
	}
	return k
}
