package wechat

import (
	"context"
	"fmt"
)

// Channels order status values (field Order.Status).
const (
	// OrderStatusUnpaid: 10, awaiting payment.
	OrderStatusUnpaid = 10
	// OrderStatusAwaitingShip: 20, paid and awaiting shipment (the pipeline's work).
	OrderStatusAwaitingShip = 20
	// OrderStatusPartlyShipped: 21, some packages shipped.
	OrderStatusPartlyShipped = 21
	// OrderStatusShipped: 30, shipped, awaiting receipt.
	OrderStatusShipped = 30
	// OrderStatusDone: 100, completed.
	OrderStatusDone = 100
	// OrderStatusAfterSaleCancel: 200, cancelled after a full after-sale.
	OrderStatusAfterSaleCancel = 200
	// OrderStatusCancelled: 250, cancelled.
	OrderStatusCancelled = 250
)

// TimeRange is a window of Unix seconds; the platform allows at most 7 days.
type TimeRange struct {
	StartTime int64 `json:"start_time"`
	EndTime   int64 `json:"end_time"`
}

// ListOrdersRequest is the body of order/list/get. At least one time range must
// be set; NextKey is the NextKey of the previous page, with otherwise identical
// parameters.
type ListOrdersRequest struct {
	CreateTimeRange *TimeRange `json:"create_time_range,omitempty"`
	UpdateTimeRange *TimeRange `json:"update_time_range,omitempty"`
	Status          *int       `json:"status,omitempty"`
	OpenID          string     `json:"openid,omitempty"`
	PageSize        int        `json:"page_size,omitempty"`
	NextKey         string     `json:"next_key,omitempty"`
}

// ListOrdersResponse is one page of order ids.
type ListOrdersResponse struct {
	OrderIDList []ID   `json:"order_id_list"`
	NextKey     string `json:"next_key"`
	HasMore     bool   `json:"has_more"`
}

// ListOrders calls POST /channels/ec/order/list/get.
func (c *Client) ListOrders(ctx context.Context, req ListOrdersRequest) (*ListOrdersResponse, error) {
	var resp *ListOrdersResponse
	err := c.call(ctx, EndpointOrderList, req, func(status int, raw []byte) (err error) {
		resp, err = decodeListOrders(status, raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// decodeListOrders decodes an order/list/get answer.
func decodeListOrders(status int, raw []byte) (*ListOrdersResponse, error) {
	var resp ListOrdersResponse
	if err := decodeResponse(EndpointOrderList, status, raw, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Order is a Channels order as returned by order/get (the fields the pipeline
// uses).
type Order struct {
	OrderID     ID          `json:"order_id"`
	Status      int         `json:"status"`
	CreateTime  int64       `json:"create_time"`
	UpdateTime  int64       `json:"update_time"`
	OpenID      string      `json:"openid"`
	OrderDetail OrderDetail `json:"order_detail"`
}

// OrderDetail holds the products and the delivery information of an order.
type OrderDetail struct {
	ProductInfos []ProductInfo `json:"product_infos"`
	DeliveryInfo DeliveryInfo  `json:"delivery_info"`
}

// ProductInfo is one ordered SKU. SkuCnt maps to DeliveryProduct.ProductCnt.
type ProductInfo struct {
	ProductID         ID     `json:"product_id"`
	SkuID             ID     `json:"sku_id"`
	SkuCnt            int    `json:"sku_cnt"`
	Title             string `json:"title"`
	OnAftersaleSkuCnt int    `json:"on_aftersale_sku_cnt"`
}

// DeliveryInfo is the delivery part of an order.
type DeliveryInfo struct {
	DeliverMethod       int                   `json:"deliver_method"`
	AddressInfo         AddressInfo           `json:"address_info"`
	DeliveryProductInfo []DeliveryProductInfo `json:"delivery_product_info"`
}

// AddressInfo is the receiver's address.
type AddressInfo struct {
	UserName     string `json:"user_name"`
	PostalCode   string `json:"postal_code"`
	ProvinceName string `json:"province_name"`
	CityName     string `json:"city_name"`
	CountyName   string `json:"county_name"`
	DetailInfo   string `json:"detail_info"`
	TelNumber    string `json:"tel_number"`
}

// DeliveryProductInfo is one package already sent for the order.
type DeliveryProductInfo struct {
	WaybillID    string            `json:"waybill_id"`
	DeliveryID   string            `json:"delivery_id"`
	ProductInfos []DeliveryProduct `json:"product_infos"`
}

// orderGetRequest is the body of order/get.
type orderGetRequest struct {
	OrderID string `json:"order_id"`
}

// orderGetResponse is the answer of order/get.
type orderGetResponse struct {
	Order *Order `json:"order"`
}

// GetOrder calls POST /channels/ec/order/get with {"order_id":"…"}.
func (c *Client) GetOrder(ctx context.Context, orderID string) (*Order, error) {
	var order *Order
	err := c.call(ctx, EndpointOrderGet, orderGetRequest{OrderID: orderID}, func(status int, raw []byte) (err error) {
		order, err = decodeOrder(status, raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return order, nil
}

// decodeOrder decodes an order/get answer.
func decodeOrder(status int, raw []byte) (*Order, error) {
	var resp orderGetResponse
	if err := decodeResponse(EndpointOrderGet, status, raw, &resp); err != nil {
		return nil, err
	}
	if resp.Order == nil {
		return nil, fmt.Errorf("wechat %s: %w: no order in the answer", EndpointOrderGet, ErrBadResponse)
	}
	return resp.Order, nil
}

// Deliver types of DeliveryItem.DeliverType.
const (
	// DeliverTypeExpress: shipped by the merchant's own carrier; WaybillID and
	// DeliveryID are required.
	DeliverTypeExpress = 1
	// DeliverTypeVirtual: virtual goods without logistics (orders with
	// deliver_method 1 only).
	DeliverTypeVirtual = 3
)

// SendDeliveryRequest is the body of delivery/send. OrderID is sent as a JSON
// string, as in the page's examples.
type SendDeliveryRequest struct {
	OrderID      ID             `json:"order_id"`
	DeliveryList []DeliveryItem `json:"delivery_list"`
}

// DeliveryItem is one package of a delivery.
type DeliveryItem struct {
	DeliveryID   string            `json:"delivery_id,omitempty"`
	WaybillID    string            `json:"waybill_id,omitempty"`
	DeliverType  int               `json:"deliver_type"`
	ProductInfos []DeliveryProduct `json:"product_infos"`
	CourseInfo   *CourseInfo       `json:"course_info,omitempty"`
	SnInfo       *SnInfo           `json:"sn_info,omitempty"`
}

// DeliveryProduct is one SKU and its count in a package.
type DeliveryProduct struct {
	ProductCnt int `json:"product_cnt"`
	ProductID  ID  `json:"product_id"`
	SkuID      ID  `json:"sku_id"`
}

// CourseInfo describes a course delivered as a mini-program link.
type CourseInfo struct {
	StartTime  int64      `json:"start_time,omitempty"`
	EndTime    int64      `json:"end_time,omitempty"`
	CoursePath CoursePath `json:"course_path"`
}

// CoursePath is the address of a course; Type 0 is a mini-program path.
type CoursePath struct {
	Type     int    `json:"type"`
	WxaAppID string `json:"wxa_appid"`
	WxaPath  string `json:"wxa_path"`
}

// SnInfo carries the serial number required for state-subsidised (国补) orders.
type SnInfo struct {
	SnCode string `json:"sn_code"`
	Imei1  string `json:"imei1,omitempty"`
	Imei2  string `json:"imei2,omitempty"`
}

// SendDelivery calls POST /channels/ec/order/delivery/send. A nil error means the
// platform answered errcode 0; use Classify on any other outcome (109001, already
// shipped, is ClassAlreadyDone).
func (c *Client) SendDelivery(ctx context.Context, req SendDeliveryRequest) error {
	return c.call(ctx, EndpointDeliverySend, req, decodeSendDelivery)
}

// decodeSendDelivery checks a delivery/send answer, which carries only the
// errcode and errmsg.
func decodeSendDelivery(status int, raw []byte) error {
	return decodeResponse(EndpointDeliverySend, status, raw, nil)
}
