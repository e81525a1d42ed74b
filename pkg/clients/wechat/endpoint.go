package wechat

// DefaultBaseURL is the WeChat API origin used unless WithBaseURL says otherwise.
const DefaultBaseURL = "https://api.weixin.qq.com"

// Endpoint names one platform API. It labels errors and metrics;
// Path gives its URL path.
type Endpoint string

// The endpoints this package calls.
const (
	// EndpointStableToken is POST /cgi-bin/stable_token.
	EndpointStableToken Endpoint = "stable_token"
	// EndpointOrderList is POST /channels/ec/order/list/get.
	EndpointOrderList Endpoint = "order/list/get"
	// EndpointOrderGet is POST /channels/ec/order/get.
	EndpointOrderGet Endpoint = "order/get"
	// EndpointDeliverySend is POST /channels/ec/order/delivery/send.
	EndpointDeliverySend Endpoint = "delivery/send"
	// EndpointBatchGetOrder is POST /cgi-bin/express/business/order/batchget.
	EndpointBatchGetOrder Endpoint = "batchGetOrder"
	// EndpointGetOrder is POST /cgi-bin/express/business/order/get.
	EndpointGetOrder Endpoint = "getOrder"
)

// Path returns the URL path of the endpoint, or "" for an unknown endpoint.
func (e Endpoint) Path() string {
	switch e {
	case EndpointStableToken:
		return "/cgi-bin/stable_token"
	case EndpointOrderList:
		return "/channels/ec/order/list/get"
	case EndpointOrderGet:
		return "/channels/ec/order/get"
	case EndpointDeliverySend:
		return "/channels/ec/order/delivery/send"
	case EndpointBatchGetOrder:
		return "/cgi-bin/express/business/order/batchget"
	case EndpointGetOrder:
		return "/cgi-bin/express/business/order/get"
	default:
		return ""
	}
}

// String returns the endpoint name, e.g. "delivery/send".
func (e Endpoint) String() string { return string(e) }
