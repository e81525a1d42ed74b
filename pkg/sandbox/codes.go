package sandbox

import "fmt"

// Error codes the sandbox answers that the seed pages do not list.
const (
	// CodeWaybillNotFound is the per-item errcode of batchGetOrder (and the errcode of
	// getOrder) for an order the logistics side does not know, or whose delivery_id or
	// waybill_id does not match the waybill.
	CodeWaybillNotFound = 9300507
)

// wxMessages are the errmsg texts of the WeChat errcodes the sandbox answers: the seed
// pages' descriptions for the codes they list, WeChat's global texts for the others.
var wxMessages = map[int]string{
	0:     "ok",
	-1:    "system error",
	40001: "invalid credential, access_token is invalid or not latest",
	40002: "invalid grant_type",
	40013: "invalid appid",
	40125: "invalid appsecret",
	41002: "appid missing",
	41004: "appsecret missing",
	42001: "access_token expired",
	43001: "require GET method",
	43002: "require POST method",
	44002: "empty post data",
	45009: "reach max api daily quota limit",
	45011: "api minute-quota reach limit, must slower, retry next minute",
	48001: "api unauthorized",

	// 002 order list
	31042:  "请求内订单过多,请缩短时间范围后重试",
	40097:  "请求体参数不正确,请检查各个参数是否按规范填写,具体原因查看errmsg",
	47001:  "请求体格式不正确,请检查请求体中各个参数的类型是否正确",
	606006: "next_key参数不正确,本次请求参数与上一页不一致",

	// 004 delivery/send
	100002:    "订单不存在",
	100003:    "订单更新过于频繁,更新订单失败,请重试",
	101100:    "当前订单状态不允许发货,请检查订单状态",
	108009:    "当前订单有未完成售后单,不允许发货",
	109000:    "发货失败,请检查 errmsg 中返回的商品是否正确填写",
	109001:    "当前订单已经发货完成,不能重复发货",
	109002:    "当前发货请求里没有带上发货商品,请检查product_infos和is_all_product是否按规范填写",
	109205:    "当前订单已经下单在线物流单,不允许自寄发货",
	606003:    "商家没有默认退货地址,不可发货,请设置默认退货地址后再进行发货",
	606004:    "delivery_id不合法,请使用【获取物流公司列表】接口获取合法的delivery_id",
	606005:    "waybill_id不合法,请检查快递单号是否正确填写",
	606008:    "deliver_type不符合要求,普通订单请使用快递发货,虚拟商品订单请无需物流发货,请检查订单deliver_method",
	606031:    "发货请求里product_id或sku_id填写不正确,请检查订单中是否包含该商品",
	606037:    "该sku不是课程商品,不能填写课程信息",
	606046:    "请使用电子面单发货",
	606049:    "当前订单存在风险,请先不要发货等待平台进一步的通知",
	10020115:  "用户申请修改收货地址,请商家处理完毕之后再发货",
	10020276:  "存在发货前更换sku请求,请商家处理后再发货",
	268545001: "订单ID和面单的取号的商品id不匹配",
	268545009: "国补锁sn码失败,可以重试",

	CodeWaybillNotFound: "waybill not found",
}

// wxMessage is the errmsg for code, with detail appended when given.
func wxMessage(code int, detail string) string {
	msg, ok := wxMessages[code]
	if !ok {
		msg = fmt.Sprintf("sandbox errcode %d", code)
	}
	if detail != "" {
		msg += ": " + detail
	}
	return msg
}

// wxStatus is the errcode/errmsg pair every WeChat answer carries.
type wxStatus struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
}

// wxErr is a WeChat errcode answer.
func wxErr(code int, detail string) reply {
	return jsonReply(code, wxStatus{Errcode: code, Errmsg: wxMessage(code, detail)})
}

// wxFault is a fault's answer on a WeChat endpoint.
func wxFault(f Fault) reply {
	if f.raw() {
		return rawReply(f)
	}
	return wxErr(f.Code, "")
}

// vvMessages are the msg texts of the vv-tool codes (seed 003).
var vvMessages = map[int]string{
	0:   "操作成功",
	100: "请求参数错误",
	101: "请求超时,请重试",
	103: "旺旺账号不存在",
	200: "系统错误,请联系客服",
	202: "系统错误,请稍后再试",
	203: "暂不支持当前接口",
	204: "请求异常:无该接口权限,请前往官网开通正式接口。",
	302: "未授权店铺",
	401: "身份凭证无效",
	404: "请求路径或请求方式错误",
	614: "参数:trade_id:P07 无效,格式不对、非法值、越界等",
}

// vvMessage is the msg for code, with detail appended when given.
func vvMessage(code int, detail string) string {
	msg, ok := vvMessages[code]
	if !ok {
		msg = fmt.Sprintf("sandbox code %d", code)
	}
	if detail != "" {
		msg += ": " + detail
	}
	return msg
}
