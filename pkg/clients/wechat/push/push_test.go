package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The vectors of testdata/README.md.
const (
	officialKey   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	officialAppID = "wxb11529c136998cb6"
	officialRand  = "aaaabbbbccccdddd"
	officialMsg   = "我是中文abcd123"
	officialEnc   = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
	officialMsg2  = "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>"
	officialEnc2  = "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb"

	wecomKey   = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	wecomToken = "QDG6eK"
	wecomAppID = "wx5823bf96d3bd56c7"
	wecomTS    = "1409659813"
	wecomNonce = "1372623149"
	wecomSig   = "477715d11cdb4164915debcba66cb864d751f3e6"
	wecomEnc   = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)

// TestOfficialVectors: encrypting the official sample's messages with its
// random bytes gives its ciphertexts, and they decrypt back.
func TestOfficialVectors(t *testing.T) {
	for _, v := range []struct{ msg, enc string }{{officialMsg, officialEnc}, {officialMsg2, officialEnc2}} {
		enc, err := Encrypt(officialKey, []byte(v.msg), officialAppID, strings.NewReader(officialRand))
		if err != nil || enc != v.enc {
			t.Errorf("Encrypt = %q, %v; want the sample's %q", enc, err, v.enc)
		}
		msg, err := Decrypt(officialKey, v.enc, officialAppID)
		if err != nil || string(msg) != v.msg {
			t.Errorf("Decrypt = %q, %v; want %q", msg, err, v.msg)
		}
	}
}

// TestWeComVector: the documentation's msg_signature is the one Sign makes,
// and its Encrypt decrypts to a message for its receiver id.
func TestWeComVector(t *testing.T) {
	if got := Sign(wecomToken, wecomTS, wecomNonce, wecomEnc); got != wecomSig {
		t.Fatalf("Sign = %s, want the documented %s", got, wecomSig)
	}
	msg, err := Decrypt(wecomKey, wecomEnc, wecomAppID)
	if err != nil || !bytes.HasPrefix(msg, []byte("<xml>")) {
		t.Fatalf("Decrypt = %q, %v", msg, err)
	}
	if _, err := Decrypt(wecomKey, wecomEnc, "wx0000000000000000"); !errors.Is(err, ErrWrongAppID) {
		t.Errorf("another appid: %v, want ErrWrongAppID", err)
	}
}

var shop = Keys{Token: "t0ken", AESKey: officialKey, AppID: "wx1234567890abcdef"}

const payMsg = `{"ToUserName":"gh_0123456789ab","FromUserName":"o0A1b2","CreateTime":1741944413,"MsgType":"event","Event":"channels_ec_order_pay","order_info":{"order_id":3704612354559743232,"pay_time":1741944413}}`

func seal(t *testing.T, k Keys, msg string) (Query, []byte) {
	t.Helper()
	q, body, err := k.Seal([]byte(msg), "1741944413", "n0nce", strings.NewReader(officialRand))
	if err != nil {
		t.Fatal(err)
	}
	return ParseQuery(q), body
}

// TestOpen: a sealed push opens to its message, with the order id exact,
// and every way of getting it wrong is refused with its error.
func TestOpen(t *testing.T) {
	q, body := seal(t, shop, payMsg)
	m, err := shop.Open(q, body)
	if err != nil {
		t.Fatal(err)
	}
	if m.OrderID != "3704612354559743232" || m.Event != "channels_ec_order_pay" || m.CreateTime != 1741944413 || string(m.Raw) != payMsg {
		t.Fatalf("message %+v", m)
	}
	if k := m.DedupKey(); k != "channels_ec_order_pay:3704612354559743232:1741944413" {
		t.Errorf("DedupKey = %q", k)
	}

	rotated := Keys{Token: shop.Token, AESKey: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", PreviousAESKey: shop.AESKey, AppID: shop.AppID}
	if _, err := rotated.Open(q, body); err != nil {
		t.Errorf("a push under the previous key after a rotation: %v", err)
	}

	other := shop
	other.AppID = "wx0000000000000000"
	oq, obody := seal(t, other, payMsg)
	withSig := func(q Query, f func(*Query)) Query { f(&q); return q }
	tests := []struct {
		name string
		keys Keys
		q    Query
		body []byte
		want error
	}{
		{"another shop's appid", shop, oq, obody, ErrWrongAppID},
		{"msg_signature of another token", Keys{Token: "x", AESKey: shop.AESKey, AppID: shop.AppID}, q, body, ErrBadSignature},
		{"no msg_signature, only the plain signature", shop, withSig(q, func(q *Query) { q.MsgSignature = "" }), body, ErrBadSignature},
		{"signature of another body", shop, q, []byte(strings.Replace(string(body), `"Encrypt":"`, `"Encrypt":"A`, 1)), ErrBadSignature},
		{"plaintext body", shop, q, []byte(payMsg), ErrNotEncrypted},
		{"encrypt_type raw", shop, withSig(q, func(q *Query) { q.EncryptType = "raw" }), body, ErrNotEncrypted},
		{"not JSON", shop, q, []byte("<xml/>"), ErrMalformed},
		{"too large", shop, q, bytes.Repeat([]byte(" "), MaxBody+1), ErrTooLarge},
		{"wrong key", Keys{Token: shop.Token, AESKey: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", AppID: shop.AppID}, q, body, ErrBadCiphertext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.keys.Open(tt.q, tt.body)
			if !errors.Is(err, tt.want) || m != nil {
				t.Fatalf("Open = %+v, %v; want %v", m, err, tt.want)
			}
			for _, secret := range []string{shop.Token, shop.AESKey, "3704612354559743232"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q carries a secret or the plaintext", err)
				}
			}
		})
	}
}

// TestDecryptRefusesBrokenCiphertexts: no ciphertext panics; each broken one
// is ErrBadCiphertext.
func TestDecryptRefusesBrokenCiphertexts(t *testing.T) {
	good, err := Encrypt(officialKey, []byte(payMsg), "wx1", strings.NewReader(officialRand))
	if err != nil {
		t.Fatal(err)
	}
	raw := func(b []byte) string { return b64(b) }
	for name, ct := range map[string]string{
		"not base64":        "!!!",
		"empty":             "",
		"one byte":          raw([]byte{1}),
		"not whole blocks":  raw(make([]byte, 17)),
		"zero block":        raw(make([]byte, 16)),
		"truncated":         good[:len(good)-24],
		"padding byte 33":   raw(encryptRaw(t, append(make([]byte, 31), 33))),
		"padding mixed":     raw(encryptRaw(t, append(make([]byte, 30), 1, 2))),
		"length beyond end": raw(encryptRaw(t, padded(append(make([]byte, 16), 0xff, 0xff, 0xff, 0xff)))),
		"shorter than 20":   raw(encryptRaw(t, padded(make([]byte, 8)))),
	} {
		if _, err := Decrypt(officialKey, ct, "wx1"); !errors.Is(err, ErrBadCiphertext) {
			t.Errorf("%s: %v, want ErrBadCiphertext", name, err)
		}
	}
	for _, k := range []string{"", "short", officialKey + "A", strings.Repeat("!", 43)} {
		if _, err := Decrypt(k, good, "wx1"); !errors.Is(err, ErrBadKey) {
			t.Errorf("key %q: %v, want ErrBadKey", k, err)
		}
	}
}

// TestVerifyURL: the plain check answers echostr; the security-mode check
// decrypts it; a wrong signature is refused.
func TestVerifyURL(t *testing.T) {
	q := Query{Timestamp: "1", Nonce: "2", Echostr: "4075181314397890557", Signature: Sign(shop.Token, "1", "2")}
	if got, err := shop.VerifyURL(q); err != nil || got != q.Echostr {
		t.Errorf("plain check = %q, %v", got, err)
	}
	q.Signature = Sign("other", "1", "2")
	if _, err := shop.VerifyURL(q); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong token: %v", err)
	}
	enc, err := Encrypt(shop.AESKey, []byte("hello"), shop.AppID, strings.NewReader(officialRand))
	if err != nil {
		t.Fatal(err)
	}
	sq := Query{Timestamp: "1", Nonce: "2", Echostr: enc, MsgSignature: Sign(shop.Token, "1", "2", enc)}
	if got, err := shop.VerifyURL(sq); err != nil || got != "hello" {
		t.Errorf("security-mode check = %q, %v", got, err)
	}
	if _, err := shop.VerifyURL(Query{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("no echostr: %v", err)
	}
}

// TestParseMessage: order ids above 2^53 stay exact, numbers and strings
// are both read, and the event fields land where they belong.
func TestParseMessage(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want Message
	}{
		{`{"CreateTime":"1700000000","Event":"channels_ec_order_cancel","order_info":{"order_id":"3704612354559743999","cancel_type":1}}`,
			Message{CreateTime: 1700000000, Event: "channels_ec_order_cancel", OrderID: "3704612354559743999", CancelType: 1}},
		{`{"CreateTime":1700000001,"Event":"channels_ec_order_deliver","order_info":{"order_id":18446744073709551615,"finish_delivery":1}}`,
			Message{CreateTime: 1700000001, Event: "channels_ec_order_deliver", OrderID: "18446744073709551615", FinishDelivery: 1}},
		{`{"CreateTime":1700000002,"Event":"channels_ec_order_ext_info_update","order_info":{"order_id":1,"type":2}}`,
			Message{CreateTime: 1700000002, Event: "channels_ec_order_ext_info_update", OrderID: "1", ExtType: 2}},
	} {
		m, err := ParseMessage([]byte(tt.raw))
		if err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		m.Raw = nil
		if !reflect.DeepEqual(*m, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.raw, *m, tt.want)
		}
	}
	for _, bad := range []string{`[]`, `{"order_info":{"order_id":3.7e18}}`, `{"CreateTime":"soon"}`} {
		if _, err := ParseMessage([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", bad, err)
		}
	}
	m, _ := ParseMessage([]byte(`{"Event":"channels_ec_order_ext_info_update","CreateTime":5,"order_info":{"order_id":9,"type":7}}`))
	if m.DedupKey() != "channels_ec_order_ext_info_update:9:5:7" {
		t.Errorf("DedupKey of an ext_info_update = %q, want the type in it", m.DedupKey())
	}
}

func FuzzOpen(f *testing.F) {
	q, body := seal(&testing.T{}, shop, payMsg)
	f.Add(q.MsgSignature, body)
	f.Add(q.MsgSignature, []byte(payMsg))
	f.Add("", []byte(`{"Encrypt":"AAAA"}`))
	f.Add(Sign(shop.Token, q.Timestamp, q.Nonce, "AAAAAAAAAAAAAAAAAAAAAA=="), []byte(`{"Encrypt":"AAAAAAAAAAAAAAAAAAAAAA=="}`))
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		// Sign the fuzzed Encrypt too, so the decryptor itself is reached.
		var env envelope
		if json.Unmarshal(body, &env) == nil && env.Encrypt != "" && sig == "" {
			sig = Sign(shop.Token, q.Timestamp, q.Nonce, env.Encrypt)
		}
		qq := q
		qq.MsgSignature = sig
		m, err := shop.Open(qq, body)
		if err == nil && m == nil {
			t.Fatal("no message and no error")
		}
		if err != nil && m != nil {
			t.Fatal("a message with an error")
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	good, _ := Encrypt(officialKey, []byte(payMsg), "wx1", strings.NewReader(officialRand))
	f.Add(good)
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==")
	f.Fuzz(func(t *testing.T, ct string) {
		_, _ = Decrypt(officialKey, ct, "wx1")
	})
}
