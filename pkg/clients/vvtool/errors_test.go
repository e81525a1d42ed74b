package vvtool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestClassifyResponses(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		class    Class
		code     int
		contains []string // substrings of the error message
	}{
		{name: "ok", status: 200, body: `{"code":0,"msg":"操作成功","data":[]}`, class: ClassOK},
		{name: "101 timeout", status: 200, body: `{"code":101,"msg":"请求超时,请重试"}`, class: ClassTransient, code: 101, contains: []string{"code 101", "retried", "请求超时"}},
		{name: "202 busy", status: 200, body: `{"code":202,"msg":"系统错误,请稍后再试"}`, class: ClassTransient, code: 202, contains: []string{"code 202", "retried"}},
		{name: "401 token", status: 200, body: `{"code":401,"msg":"身份凭证无效"}`, class: ClassPermanent, code: 401, contains: []string{"code 401", "token invalid: renew VVTOOL_TOKEN", "身份凭证无效"}},
		{name: "302 shop", status: 200, body: `{"code":302,"msg":"未授权店铺"}`, class: ClassPermanent, code: 302, contains: []string{"code 302", "shop not authorised"}},
		{name: "204 permission", status: 200, body: `{"code":204,"msg":"请求异常:无该接口权限,请前往官网开通正式接口。"}`, class: ClassPermanent, code: 204, contains: []string{"code 204", "no quota/permission"}},
		{name: "204 quota", status: 200, body: `{"code":204,"msg":"请求异常:API 调用次数不足,请前往网站兑换次数。"}`, class: ClassPermanent, code: 204, contains: []string{"no quota/permission", "top up"}},
		{name: "614 trade id", status: 200, body: `{"code":614,"msg":"参数:trade_id:P07 无效"}`, class: ClassPermanent, code: 614, contains: []string{"code 614", "invalid trade id"}},
		{name: "100 params", status: 200, body: `{"code":100,"msg":"请求参数错误"}`, class: ClassPermanent, code: 100, contains: []string{"invalid request parameters"}},
		{name: "103 account", status: 200, body: `{"code":103,"msg":"旺旺账号不存在"}`, class: ClassPermanent, code: 103, contains: []string{"does not exist"}},
		{name: "200 system", status: 200, body: `{"code":200,"msg":"系统错误,请联系客服"}`, class: ClassPermanent, code: 200, contains: []string{"system error"}},
		{name: "203 unsupported", status: 200, body: `{"code":203,"msg":"暂不支持当前接口"}`, class: ClassPermanent, code: 203, contains: []string{"not supported"}},
		{name: "404 path", status: 200, body: `{"code":404,"msg":"请求路径或请求方式错误"}`, class: ClassPermanent, code: 404, contains: []string{"VVTOOL_API_BASE"}},
		{name: "unknown code", status: 200, body: `{"code":999,"msg":"?"}`, class: ClassPermanent, code: 999, contains: []string{"unknown vv-tool code"}},
		{name: "code in a 401 HTTP answer", status: 401, body: `{"code":401,"msg":"身份凭证无效"}`, class: ClassPermanent, code: 401, contains: []string{"code 401 (HTTP 401)", "renew VVTOOL_TOKEN"}},
		{name: "code in a 503 HTTP answer", status: 503, body: `{"code":202,"msg":"busy"}`, class: ClassTransient, code: 202},
		{name: "HTTP 500", status: 500, body: `oops`, class: ClassTransient, contains: []string{"HTTP 500 Internal Server Error", "oops"}},
		{name: "HTTP 502 html", status: 502, body: `<html>Bad Gateway</html>`, class: ClassTransient, contains: []string{"HTTP 502"}},
		{name: "HTTP 503", status: 503, body: ``, class: ClassTransient, contains: []string{"HTTP 503"}},
		{name: "HTTP 429", status: 429, body: `slow down`, class: ClassTransient, contains: []string{"HTTP 429", "rate limited"}},
		{name: "HTTP 400", status: 400, body: `bad`, class: ClassPermanent, contains: []string{"HTTP 400"}},
		{name: "HTTP 403", status: 403, body: `no`, class: ClassPermanent, contains: []string{"HTTP 403", "VVTOOL_TOKEN"}},
		{name: "HTTP 404", status: 404, body: `not found`, class: ClassPermanent, contains: []string{"HTTP 404", "VVTOOL_API_BASE"}},
		{name: "HTTP 200 html page", status: 200, body: `<html><body>维护中</body></html>`, class: ClassTransient, contains: []string{"bad response", "维护中"}},
		{name: "HTTP 200 truncated", status: 200, body: `{"code":0,"data":[{"tid":`, class: ClassTransient, contains: []string{"bad response"}},
		{name: "HTTP 200 no code", status: 200, body: `{"data":[]}`, class: ClassTransient, contains: []string{"bad response", `no "code"`}},
		{name: "HTTP 200 wrong types", status: 200, body: `{"code":0,"data":[{"tid":true}]}`, class: ClassTransient, contains: []string{"bad response"}},
		{name: "body over 4 MiB", status: 200, body: `{"code":0,"msg":"` + strings.Repeat("x", MaxResponseBytes) + `"}`, class: ClassTransient, contains: []string{"bad response", "exceeds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			_, err := newTestClient(srv).Detail(context.Background(), DetailRequest{ShopID: "1001"})
			if got := Classify(err); got != tt.class {
				t.Fatalf("Classify(%v) = %v, want %v", err, got, tt.class)
			}
			if err == nil {
				return
			}
			if got := Code(err); got != tt.code {
				t.Errorf("Code = %d, want %d", got, tt.code)
			}
			var ae *APIError
			isHTTP := errors.As(err, &ae) && ae.Code == 0
			if isHTTP != errors.Is(err, ErrHTTPStatus) || (isHTTP && ae.HTTPStatus != tt.status) {
				t.Errorf("ErrHTTPStatus mismatch: %v", err)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q lacks %q", err, s)
				}
			}
			if !strings.Contains(err.Error(), "shop 1001") {
				t.Errorf("message %q lacks the shop", err)
			}
			if len(err.Error()) > 1000 {
				t.Errorf("message is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestClassifyErrors(t *testing.T) {
	timeout := &net.OpError{Op: "dial", Err: &timeoutErr{}}
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassOK},
		{"bad response", fmt.Errorf("x: %w", ErrBadResponse), ClassTransient},
		{"transport", fmt.Errorf("x: %w", &TransportError{msg: "reset"}), ClassTransient},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), ClassTransient},
		{"canceled", context.Canceled, ClassTransient},
		{"net error", timeout, ClassTransient},
		{"invalid request", ErrInvalidRequest, ClassPermanent},
		{"api 101", &APIError{Code: 101}, ClassTransient},
		{"api 401", &APIError{Code: 401}, ClassPermanent},
		{"http 504", &APIError{HTTPStatus: 504}, ClassTransient},
		{"http 418", &APIError{HTTPStatus: 418}, ClassPermanent},
		{"unknown", errors.New("something else"), ClassPermanent},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("%s: Classify = %v, want %v", tt.name, got, tt.want)
		}
	}
	for c, s := range map[Class]string{ClassOK: "ok", ClassTransient: "transient", ClassPermanent: "permanent", Class(9): "Class(9)"} {
		if c.String() != s {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), c.String(), s)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestTransportErrors(t *testing.T) {
	hang := make(chan struct{})
	slow := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(hang) })
	closed := newServer(t, func(http.ResponseWriter, *http.Request) {})
	closed.Close()
	reset := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		client  *Client
		ctx     func() (context.Context, context.CancelFunc)
		is      error
		timeout bool
	}{
		{name: "connection refused", client: newTestClient(closed)},
		{name: "connection reset", client: newTestClient(reset)},
		{name: "context deadline", client: newTestClient(slow), is: context.DeadlineExceeded, timeout: true,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			}},
		{name: "client timeout", client: newTestClient(slow, WithHTTPClient(&http.Client{Timeout: 50 * time.Millisecond})), timeout: true},
		{name: "context cancelled", client: newTestClient(slow), is: context.Canceled,
			ctx: func() (context.Context, context.CancelFunc) { return cancelled, func() {} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.Background(), func() {}
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			_, err := tt.client.Detail(ctx, DetailRequest{ShopID: "1001"})
			if Classify(err) != ClassTransient {
				t.Fatalf("Classify(%v) = %v, want transient", err, Classify(err))
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err %v is not %v", err, tt.is)
			}
			var ne net.Error
			if tt.timeout && (!errors.As(err, &ne) || !ne.Timeout()) {
				t.Errorf("err %v is not a timeout", err)
			}
		})
	}
}

// leakyTransport fails every request with an error that quotes the request's
// Authorization header and URL, as a careless proxy or middleware might.
type leakyTransport struct{}

func (leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("proxy refused %s with %q", r.URL, r.Header.Get("Authorization"))
}

func TestTokenNeverInErrors(t *testing.T) {
	echo := func(status int, body string) *Client {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(strings.ReplaceAll(body, "$TOKEN", strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))))
		})
		return newTestClient(srv)
	}
	closed := newServer(t, func(http.ResponseWriter, *http.Request) {})
	closed.Close()
	tests := []struct {
		name   string
		client *Client
	}{
		{"code message quotes token", echo(200, `{"code":401,"msg":"token $TOKEN invalid","data":"https://x.invalid/?t=$TOKEN"}`)},
		{"http error body quotes token", echo(500, `<html>Authorization: Bearer $TOKEN</html>`)},
		{"bad body quotes token", echo(200, `<html>Authorization: Bearer $TOKEN</html>`)},
		{"bad body quotes token past the snippet", echo(200, strings.Repeat("x", maxSnippet-5)+`$TOKEN`)},
		{"transport error quotes header", NewClient(testToken, WithHTTPClient(&http.Client{Transport: leakyTransport{}}), WithBaseURL("http://vv.invalid"))},
		{"token in base URL", NewClient(testToken, WithBaseURL(closed.URL+"/"+testToken))},
		{"token in base URL userinfo", NewClient(testToken, WithBaseURL("http://u:"+testToken+"@"+strings.TrimPrefix(closed.URL, "http://")))},
		{"unusable base URL with token", NewClient(testToken, WithBaseURL("http://[::1"+testToken))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.Detail(context.Background(), DetailRequest{ShopID: "1001"})
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for e := error(err); e != nil; e = errors.Unwrap(e) {
				if msg := e.Error(); strings.Contains(msg, testToken[:5]) {
					t.Fatalf("token leaked: %q", msg)
				}
			}
			if s := fmt.Sprintf("%+v %#v", err, err); strings.Contains(s, testToken) {
				t.Fatalf("token leaked in %%+v/%%#v: %q", s)
			}
		})
	}
}
