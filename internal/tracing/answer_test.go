package tracing

import "testing"

func TestAnswerCode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code int
		ok   bool
	}{
		{`{"errcode":0,"errmsg":"ok"}`, 0, true},
		{`{"errcode": 100003 , "errmsg":"busy"}`, 100003, true},
		{`{"errcode":-1}`, -1, true},
		{`{"msg":"ok","data":{"list":[{"code":"7","x":"a\"code\":5"}]},"code":"0"}`, 0, true},
		{`{"code":" 42 "}`, 42, true},
		{`{"order_list":[{"errcode":9300507}],"errcode":0}`, 0, true},
		{`{"access_token":"x","expires_in":7200}`, 0, false},
		{`{"errmsg":"a \\"errcode\\":5 b"}`, 0, false},
		{`{"errcode":12`, 0, false}, // cut off: the number may go on
		{`{"errcode":"abc"}`, 0, false},
		{`[{"errcode":1}]`, 0, false},
		{``, 0, false},
		{`<html>502</html>`, 0, false},
	} {
		code, ok := answerCode([]byte(tc.in))
		if code != tc.code || ok != tc.ok {
			t.Errorf("answerCode(%s) = %d, %v; want %d, %v", tc.in, code, ok, tc.code, tc.ok)
		}
	}
}
