package push_test

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/fulfill/pipeline/pkg/clients/wechat/push"
)

// A shop's callback handler opens each push before acting on it; only a
// push whose msg_signature, encryption and appid are the shop's opens.
func ExampleKeys_Open() {
	keys := push.Keys{Token: "t0ken", AESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", AppID: "wx1234567890abcdef"}

	// What WeChat sends (the sandbox seals pushes the same way).
	msg := `{"CreateTime":1741944413,"MsgType":"event","Event":"channels_ec_order_pay","order_info":{"order_id":3704612354559743232}}`
	query, body, _ := keys.Seal([]byte(msg), "1741944413", "n0nce", strings.NewReader("0123456789abcdef"))
	r := httptest.NewRequest("POST", "/v1/wechat/push/acme?"+query.Encode(), strings.NewReader(string(body)))

	m, err := keys.Open(push.ParseQuery(r.URL.Query()), body)
	fmt.Println(m.Event, m.OrderID, err)

	forged := push.Keys{Token: "guess", AESKey: keys.AESKey, AppID: keys.AppID}
	_, err = forged.Open(push.ParseQuery(r.URL.Query()), body)
	fmt.Println(err)
	// Output:
	// channels_ec_order_pay 3704612354559743232 <nil>
	// push: signature does not match: msg_signature
}

// The URL check of the 消息推送 page is answered with its echostr.
func ExampleKeys_VerifyURL() {
	keys := push.Keys{Token: "t0ken"}
	q := push.Query{Timestamp: "1741944413", Nonce: "n0nce", Echostr: "4075181314397890557",
		Signature: push.Sign("t0ken", "1741944413", "n0nce")}
	echo, err := keys.VerifyURL(q)
	fmt.Println(echo, err)
	// Output:
	// 4075181314397890557 <nil>
}
