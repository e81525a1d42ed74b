package shops

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Every secret value the tests resolve holds "sekrit": no error or log line
// may ever contain it.
const leak = "sekrit"

const (
	aesKey    = "sekritAESkeyACMEcurrent0123456789abcdefghiJ"
	aesKeyOld = "sekritAESkeyACMEprevious123456789abcdefghiJ"
)

var testEnv = map[string]string{
	"ACME_WECHAT_SECRET":    "sekrit-wechat-7f3a9c",
	"ACME_PUSH_TOKEN":       "sekrit-push-1b2c",
	"ACME_PUSH_AES_KEY":     aesKey,
	"ACME_PUSH_AES_KEY_OLD": aesKeyOld,
	"ACME_VV_TOKEN":         "sekrit-vv-5e6f",
	"ACME_API_TOKEN":        "sekrit-api-9d8e",
	"BETA_SECRET":           "sekrit-beta-secret",
	"BETA_API_TOKEN":        "sekrit-api-9d8e", // the same as acme's
	"PADDED":                "  sekrit-padded\n",
	"SPACES":                "   ",
	"MULTI":                 "sekrit-line1\nsekrit-line2",
	"CONTROL":               "sekrit-a\x00b",
	"SHORT_AES":             "sekrit-aes-short",
	"BAD_AES":               "sekrit!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
}

var testFiles = map[string]string{
	"/run/secrets/acme":  "sekrit-file-4242\n",
	"/run/secrets/empty": " \n",
	"/run/secrets/two":   "sekrit-one\nsekrit-two\n",
}

func getenv(k string) string { return testEnv[k] }

func readFile(p string) ([]byte, error) {
	if s, ok := testFiles[p]; ok {
		return []byte(s), nil
	}
	return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
}

func TestParseDesignExample(t *testing.T) {
	data, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(data, getenv, readFile)
	if err != nil {
		t.Fatal(err)
	}
	want := &Shop{
		ID: "acme",
		Channels: &Channels{
			AppID: "wx1234567890abcdef", Secret: "sekrit-wechat-7f3a9c", DeliveryID: "SF",
			PushToken: "sekrit-push-1b2c", PushAESKey: aesKey, PushAESKeyPrevious: aesKeyOld,
		},
		VVTool:          &VVTool{Token: "sekrit-vv-5e6f", ShopIDs: []string{"s1", "s2"}},
		APIToken:        "sekrit-api-9d8e",
		ShipConcurrency: 8,
	}
	got, ok := r.Shop("acme")
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Shop(acme) = %+v, %v; want %+v", got, ok, want)
	}
	if r.Len() != 1 || !reflect.DeepEqual(r.IDs(), []string{"acme"}) {
		t.Fatalf("Len %d, IDs %v", r.Len(), r.IDs())
	}
}

func TestParseValid(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []*Shop // in ID order
	}{
		{
			name: "fixed token from a file, trimmed; ids sorted",
			yaml: `
shops:
  - id: zeta
    channels:
      appid: wxz
      access_token_file: /run/secrets/acme
      delivery_id: ZTO
  - id: 7eleven
    vvtool:
      token_env: ACME_VV_TOKEN
      shop_ids: [101, s-2]
`,
			want: []*Shop{
				{ID: "7eleven", VVTool: &VVTool{Token: "sekrit-vv-5e6f", ShopIDs: []string{"101", "s-2"}}},
				{ID: "zeta", Channels: &Channels{AppID: "wxz", AccessToken: "sekrit-file-4242", DeliveryID: "ZTO"}},
			},
		},
		{
			name: "env value trimmed; longest id; concurrency bounds; block list; anchors",
			yaml: `
shops:
  - id: abcdefghijklmnopqrstuvwxyz012345
    channels:
      appid: wx1
      secret_env: PADDED
      delivery_id: &carrier SF
    ship_concurrency: 4096
  - id: b_-
    channels:
      appid: wx2
      secret_env: BETA_SECRET
      delivery_id: *carrier
    vvtool:
      token_file: /run/secrets/acme
      shop_ids:
        - "007"
    ship_concurrency: 1
`,
			want: []*Shop{
				{ID: "abcdefghijklmnopqrstuvwxyz012345", Channels: &Channels{AppID: "wx1", Secret: "sekrit-padded", DeliveryID: "SF"},
					ShipConcurrency: 4096},
				{ID: "b_-", Channels: &Channels{AppID: "wx2", Secret: "sekrit-beta-secret", DeliveryID: "SF"},
					VVTool: &VVTool{Token: "sekrit-file-4242", ShopIDs: []string{"007"}}, ShipConcurrency: 1},
			},
		},
		{
			name: "flow style, push without a previous key",
			yaml: `{shops: [{id: acme, channels: {appid: wx1, secret_env: ACME_WECHAT_SECRET, delivery_id: SF,
  push_token_env: ACME_PUSH_TOKEN, push_aes_key_env: ACME_PUSH_AES_KEY}}]}`,
			want: []*Shop{{ID: "acme", Channels: &Channels{AppID: "wx1", Secret: "sekrit-wechat-7f3a9c", DeliveryID: "SF",
				PushToken: "sekrit-push-1b2c", PushAESKey: aesKey}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.yaml), getenv, readFile)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Shops(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("shops:\n got %s\nwant %s", dump(got), dump(tc.want))
			}
		})
	}
}

func dump(shops []*Shop) string {
	var b strings.Builder
	for _, s := range shops {
		fmt.Fprintf(&b, "%+v", *s)
		if s.Channels != nil {
			fmt.Fprintf(&b, " channels=%+v", *s.Channels)
		}
		if s.VVTool != nil {
			fmt.Fprintf(&b, " vvtool=%+v", *s.VVTool)
		}
		b.WriteString("; ")
	}
	return b.String()
}

// refusals: each YAML marks the line the error must name with "# <-"
// (none: the error has no line).
var refusals = []struct {
	name, yaml, field, msg string
}{
	{"empty file", ``, "", "the file is empty"},
	{"comments only", "# nothing here\n", "", "the file is empty"},
	{"not YAML", "shops: # <-\n  - id: acme\n  bad: [\n", "", "not valid YAML"},
	{"top level is a list", "- id: acme # <-\n", "", "must be a mapping with the key shops"},
	{"unknown top-level key", "shops: []\nshop: [] # <-\n", "shop", "unknown key (known here: shops)"},
	{"key not a string", "? [a, b] # <-\n: 1\n", "", "a key must be a string"},
	{"no shops key", "{} # <-\n", "shops", "is required"},
	{"shops null", "shops: # <-\n", "shops", "lists no shops"},
	{"shops empty", "shops: [] # <-\n", "shops", "lists no shops"},
	{"shops a scalar", "shops: acme # <-\n", "shops", "must be a list of shops"},
	{"shop a scalar", "shops:\n  - acme # <-\n", "shops[0]", "must be a mapping"},
	{"second document", "shops: [{id: a, vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}}]\n---\nshops: [] # <-\n", "", "second YAML document"},
	{"id missing", `
shops:
  - channels: # <-
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      delivery_id: SF
`, "shops[0].id", "is required"},
	{"id upper case", `
shops:
  - id: Acme # <-
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
`, "shops[0].id", `"Acme" is not a shop id`},
	{"id too long", `
shops:
  - id: abcdefghijklmnopqrstuvwxyz0123456 # <-
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
`, "shops[0].id", "is not a shop id"},
	{"id leading dash", `
shops:
  - id: -acme # <-
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
`, "shops[0].id", "is not a shop id"},
	{"id with a dot (two subject tokens)", `
shops:
  - id: acme.eu # <-
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
`, "shops[0].id", "is not a shop id"},
	{"id empty", `
shops:
  - id: "" # <-
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
`, "shops[0].id", "is required"},
	{"id a list", `
shops:
  - id: [acme] # <-
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
`, "shops[0].id", "must be a string"},
	{"id twice", `
shops:
  - id: acme
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
  - id: acme # <-
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [2]}
`, "shops[1].id", "shop id acme is listed twice (also shops[0] at line 3)"},
	{"no platform", `
shops:
  - id: acme # <-
    ship_concurrency: 8
`, "shops[0]", "has neither channels nor vvtool"},
	{"unknown shop key", `
shops:
  - id: acme
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
    shipconcurrency: 8 # <-
`, "shops[0].shipconcurrency", "unknown key (known here: id, channels, vvtool, ship_concurrency, api_token_env, api_token_file)"},
	{"unknown channels key", `
shops:
  - id: acme
    channels:
      app_id: wx1 # <-
`, "shops[0].channels.app_id", "unknown key"},
	{"unknown vvtool key, quoted in the path", `
shops:
  - id: acme
    vvtool:
      "shop ids": [1] # <-
`, `shops[0].vvtool."shop ids"`, "unknown key"},
	{"merge key", `
shops:
  - &base
    id: acme
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
  - <<: *base # <-
    id: beta
`, `shops[1]."<<"`, "YAML merge keys are not supported"},
	{"key given twice", `
shops:
  - id: acme
    channels:
      appid: wx1
      appid: wx2 # <-
`, "shops[0].channels.appid", "is given twice (also at line 5)"},
	{"inline secret", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret: sekrit-inline # <-
`, "shops[0].channels.secret", "inline secrets are not allowed: use secret_env or secret_file"},
	{"inline access token", `
shops:
  - id: acme
    channels:
      access_token: sekrit-inline # <-
`, "shops[0].channels.access_token", "inline secrets are not allowed: use access_token_env or access_token_file"},
	{"inline push token", `
shops:
  - id: acme
    channels:
      push_token: sekrit-inline # <-
`, "shops[0].channels.push_token", "inline secrets are not allowed: use push_token_env or push_token_file"},
	{"inline push aes key", `
shops:
  - id: acme
    channels:
      push_aes_key: sekrit-inline # <-
`, "shops[0].channels.push_aes_key", "inline secrets are not allowed: use push_aes_key_env or push_aes_key_file"},
	{"inline previous push aes key", `
shops:
  - id: acme
    channels:
      push_aes_key_previous: sekrit-inline # <-
`, "shops[0].channels.push_aes_key_previous", "inline secrets are not allowed: use push_aes_key_previous_env"},
	{"inline vv-tool token", `
shops:
  - id: acme
    vvtool:
      token: sekrit-inline # <-
`, "shops[0].vvtool.token", "inline secrets are not allowed: use token_env or token_file"},
	{"inline api token", `
shops:
  - id: acme
    api_token: sekrit-inline # <-
`, "shops[0].api_token", "inline secrets are not allowed: use api_token_env or api_token_file"},
	{"secret by env and by file", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      secret_file: /run/secrets/acme # <-
`, "shops[0].channels.secret_file", "give secret_env or secret_file, not both"},
	{"secret and fixed token", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      access_token_file: /run/secrets/acme # <-
      delivery_id: SF
`, "shops[0].channels.access_token_file", "not both"},
	{"neither secret nor fixed token", `
shops:
  - id: acme
    channels: # <-
      appid: wx1
      delivery_id: SF
`, "shops[0].channels", "needs the app secret (secret_env or secret_file) or a fixed authorizer token"},
	{"appid missing", `
shops:
  - id: acme
    channels: # <-
      access_token_env: ACME_WECHAT_SECRET
      delivery_id: SF
`, "shops[0].channels.appid", "is required"},
	{"appid two words", `
shops:
  - id: acme
    channels:
      appid: wx 1 # <-
      secret_env: ACME_WECHAT_SECRET
      delivery_id: SF
`, "shops[0].channels.appid", "must be one word"},
	{"delivery id missing", `
shops:
  - id: acme
    channels: # <-
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
`, "shops[0].channels.delivery_id", "is required: the carrier id"},
	{"channels empty", `
shops:
  - id: acme
    channels: # <-
`, "shops[0].channels", "is empty"},
	{"channels a list", `
shops:
  - id: acme
    channels: [wx1] # <-
`, "shops[0].channels", "must be a mapping"},
	{"appid with a custom tag", `
shops:
  - id: acme
    channels:
      appid: !env WECHAT_APPID # <-
`, "shops[0].channels.appid", `must be a string, not "!env"`},
	{"secret variable unset", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET_TYPO # <-
      delivery_id: SF
`, "shops[0].channels.secret_env", "ACME_WECHAT_SECRET_TYPO is not set"},
	{"secret variable blank", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: SPACES # <-
`, "shops[0].channels.secret_env", "SPACES is not set (or is empty)"},
	{"secret pasted where the variable's name belongs", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: sekrit0123abcdef # <-
`, "shops[0].channels.secret_env", "must name an environment variable"},
	{"secret variable name empty", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: "" # <-
`, "shops[0].channels.secret_env", "is empty: name the environment variable"},
	{"secret variable a list", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: [A] # <-
`, "shops[0].channels.secret_env", "must be a string"},
	{"secret file missing", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_file: /run/secrets/nope # <-
`, "shops[0].channels.secret_file", `cannot read "/run/secrets/nope": file does not exist`},
	{"secret file blank", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_file: /run/secrets/empty # <-
`, "shops[0].channels.secret_file", `"/run/secrets/empty" is empty`},
	{"secret file path empty", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_file: ~ # <-
`, "shops[0].channels.secret_file", "is empty: give the path"},
	{"secret file of two lines", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_file: /run/secrets/two # <-
`, "shops[0].channels.secret_file", `"/run/secrets/two" holds more than one line`},
	{"secret variable of two lines", `
shops:
  - id: acme
    vvtool:
      token_env: MULTI # <-
`, "shops[0].vvtool.token_env", "MULTI holds more than one line"},
	{"secret variable with a control character", `
shops:
  - id: acme
    api_token_env: CONTROL # <-
`, "shops[0].api_token_env", "CONTROL holds control characters"},
	{"push token without a key", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      delivery_id: SF
      push_token_env: ACME_PUSH_TOKEN # <-
`, "shops[0].channels.push_token_env", "goes with push_aes_key"},
	{"push key without a token", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      delivery_id: SF
      push_aes_key_env: ACME_PUSH_AES_KEY # <-
`, "shops[0].channels.push_aes_key_env", "goes with push_token"},
	{"previous push key alone", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      delivery_id: SF
      push_aes_key_previous_env: ACME_PUSH_AES_KEY_OLD # <-
`, "shops[0].channels.push_aes_key_previous_env", "goes with push_aes_key"},
	{"push key too short", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      delivery_id: SF
      push_token_env: ACME_PUSH_TOKEN
      push_aes_key_env: SHORT_AES # <-
`, "shops[0].channels.push_aes_key_env", "must be a WeChat EncodingAESKey, 43 base64 characters (the value has 16)"},
	{"push key not base64", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      delivery_id: SF
      push_token_env: ACME_PUSH_TOKEN
      push_aes_key_env: BAD_AES # <-
`, "shops[0].channels.push_aes_key_env", "(the value is not base64)"},
	{"previous push key too short", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      delivery_id: SF
      push_token_env: ACME_PUSH_TOKEN
      push_aes_key_env: ACME_PUSH_AES_KEY
      push_aes_key_previous_file: /run/secrets/acme # <-
`, "shops[0].channels.push_aes_key_previous_file", "must be a WeChat EncodingAESKey"},
	{"vv-tool token missing", `
shops:
  - id: acme
    vvtool: # <-
      shop_ids: [1]
`, "shops[0].vvtool.token", "is required: give token_env or token_file"},
	{"vv-tool shop ids missing", `
shops:
  - id: acme
    vvtool: # <-
      token_env: ACME_VV_TOKEN
`, "shops[0].vvtool.shop_ids", "is required: at least one"},
	{"vv-tool shop ids empty", `
shops:
  - id: acme
    vvtool:
      token_env: ACME_VV_TOKEN
      shop_ids: [] # <-
`, "shops[0].vvtool.shop_ids", "is required: at least one"},
	{"vv-tool shop ids null", `
shops:
  - id: acme
    vvtool:
      token_env: ACME_VV_TOKEN
      shop_ids: # <-
`, "shops[0].vvtool.shop_ids", "is required: at least one"},
	{"vv-tool shop ids a scalar", `
shops:
  - id: acme
    vvtool:
      token_env: ACME_VV_TOKEN
      shop_ids: s1 # <-
`, "shops[0].vvtool.shop_ids", "must be a list of vv-tool shop ids"},
	{"vv-tool shop id empty", `
shops:
  - id: acme
    vvtool:
      token_env: ACME_VV_TOKEN
      shop_ids:
        - s1
        - "" # <-
`, "shops[0].vvtool.shop_ids[1]", "must be a vv-tool shop id"},
	{"vv-tool shop id a mapping", `
shops:
  - id: acme
    vvtool:
      token_env: ACME_VV_TOKEN
      shop_ids: [{id: 1}] # <-
`, "shops[0].vvtool.shop_ids[0]", "must be a string"},
	{"vv-tool shop id twice", `
shops:
  - id: acme
    vvtool:
      token_env: ACME_VV_TOKEN
      shop_ids:
        - s1
        - s1 # <-
`, "shops[0].vvtool.shop_ids[1]", "s1 is listed twice"},
	{"vv-tool empty", `
shops:
  - id: acme
    vvtool: # <-
`, "shops[0].vvtool", "is empty"},
	{"ship concurrency zero", `
shops:
  - id: acme
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
    ship_concurrency: 0 # <-
`, "shops[0].ship_concurrency", "must be a whole number from 1 to 4096"},
	{"ship concurrency too high", `
shops:
  - id: acme
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
    ship_concurrency: 4097 # <-
`, "shops[0].ship_concurrency", "must be a whole number from 1 to 4096"},
	{"ship concurrency negative", `
shops:
  - id: acme
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
    ship_concurrency: -1 # <-
`, "shops[0].ship_concurrency", "from 1 to 4096"},
	{"ship concurrency quoted", `
shops:
  - id: acme
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
    ship_concurrency: "8" # <-
`, "shops[0].ship_concurrency", "must be a whole number"},
	{"ship concurrency fraction", `
shops:
  - id: acme
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
    ship_concurrency: 1.5 # <-
`, "shops[0].ship_concurrency", "must be a whole number"},
	{"ship concurrency huge", `
shops:
  - id: acme
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
    ship_concurrency: 99999999999999999999999 # <-
`, "shops[0].ship_concurrency", "must be a whole number"},
	{"one appid in two shops", `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      delivery_id: SF
  - id: beta
    channels:
      appid: wx1 # <-
      secret_env: BETA_SECRET
      delivery_id: SF
`, "shops[1].channels.appid", "appid wx1 is also shop acme's at line 5: one appid is one Channels account"},
	{"one API token in two shops", `
shops:
  - id: acme
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}
    api_token_env: ACME_API_TOKEN
  - id: beta
    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [2]}
    api_token_env: BETA_API_TOKEN # <-
`, "shops[1].api_token_env", "is the same token as shop acme's at line 5"},
}

// expectedLine is the line marked "# <-" in yaml, 0 if none.
func expectedLine(yaml string) int {
	for i, l := range strings.Split(yaml, "\n") {
		if strings.Contains(l, "# <-") {
			return i + 1
		}
	}
	return 0
}

func TestParseRefusals(t *testing.T) {
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.yaml), getenv, readFile)
			if err == nil {
				t.Fatalf("accepted: %v", r.IDs())
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %q is not an *Error", err, err)
			}
			s := err.Error()
			checkErrorText(t, s)
			if line := expectedLine(tc.yaml); line != e.Line {
				t.Errorf("line %d, want %d: %s", e.Line, line, s)
			}
			if e.Line > 0 && e.Column == 0 && !strings.Contains(s, "not valid YAML") { // the parser tells no column
				t.Errorf("no column: %s", s)
			}
			if e.Field != tc.field {
				t.Errorf("field %q, want %q: %s", e.Field, tc.field, s)
			}
			if !strings.Contains(s, tc.msg) {
				t.Errorf("error %q does not say %q", s, tc.msg)
			}
			if e.Field != "" && !strings.Contains(s, e.Field+" ") && !strings.Contains(s, e.Field+":") {
				t.Errorf("error %q does not name the field %q", s, e.Field)
			}
		})
	}
}

// checkErrorText: one line, starts with where it is, and holds no secret.
func checkErrorText(t *testing.T, s string) {
	t.Helper()
	if strings.ContainsAny(s, "\r\n") {
		t.Errorf("error is not one line: %q", s)
	}
	if !strings.HasPrefix(s, "shops file") {
		t.Errorf("error does not start with \"shops file\": %q", s)
	}
	if strings.Contains(s, leak) {
		t.Errorf("error holds a secret: %q", s)
	}
}

// The errors name the shop once its id is known.
func TestParseErrorNamesShop(t *testing.T) {
	_, err := Parse([]byte(`
shops:
  - channels:
      appid: wx1
      secret_env: ACME_WECHAT_SECRET
      delivery_id: SF
    vvtool: {token_env: NOPE, shop_ids: [1]}
    id: acme
`), getenv, readFile)
	const want = "shops file line 7, column 25: shops[0].vvtool.token_env (shop acme): NOPE is not set (or is empty)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant  %s", err, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "secrets", "acme"), "sekrit-relative\n")
	abs := filepath.Join(dir, "abs-secret")
	writeFile(t, abs, "sekrit-absolute")
	path := filepath.Join(dir, "shops.yaml")
	writeFile(t, path, `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_file: secrets/acme
      delivery_id: SF
    api_token_file: `+abs+`
`)
	r, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Shop("acme")
	if s.Channels.Secret != "sekrit-relative" || s.APIToken != "sekrit-absolute" {
		t.Fatalf("secrets %q %q", s.Channels.Secret, s.APIToken)
	}

	for _, tc := range []struct{ name, path, want string }{
		{"missing file", filepath.Join(dir, "nope.yaml"), "shops file: cannot read"},
		{"a directory", dir, "not a regular file"},
	} {
		if _, err := Load(tc.path, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}

	writeFile(t, path, `
shops:
  - id: acme
    channels:
      appid: wx1
      secret_file: secrets # a directory
      delivery_id: SF
`)
	_, err = Load(path, nil)
	want := `shops file line 6, column 20: shops[0].channels.secret_file (shop acme): cannot read "secrets" (` +
		filepath.Join(dir, "secrets") + `): not a regular file`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant  %s", err, want)
	}
}

func TestLoadBoundsSecretSize(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "big"), strings.Repeat("sekrit", MaxSecretSize/6+1))
	path := filepath.Join(dir, "shops.yaml")
	writeFile(t, path, "shops: [{id: a, vvtool: {token_file: big, shop_ids: [1]}}]\n")
	_, err := Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), "larger than 65536 bytes") {
		t.Fatalf("error %v", err)
	}
	checkErrorText(t, err.Error())
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSingle(t *testing.T) {
	t.Run("fixed token, no appid, no delivery id", func(t *testing.T) {
		r, err := Single(Shop{Channels: &Channels{AccessToken: "sekrit-tok"}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.IDs(), []string{DefaultID}) {
			t.Fatalf("ids %v", r.IDs())
		}
	})
	t.Run("no platform: an ingest that only takes orders over HTTP", func(t *testing.T) {
		r, err := Single(Shop{APIToken: "sekrit-api"})
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := r.Shop(DefaultID); !ok || s.APIToken != "sekrit-api" {
			t.Fatalf("shop %+v, %v", s, ok)
		}
	})
	t.Run("a copy of the shop", func(t *testing.T) {
		in := Shop{Channels: &Channels{AppID: "wx1", Secret: "sekrit-s"}, VVTool: &VVTool{Token: "sekrit-t", ShopIDs: []string{"1"}}}
		r, err := Single(in)
		if err != nil {
			t.Fatal(err)
		}
		in.Channels.AppID, in.VVTool.ShopIDs[0] = "changed", "changed"
		s, _ := r.Shop(DefaultID)
		if s.Channels.AppID != "wx1" || s.VVTool.ShopIDs[0] != "1" {
			t.Fatalf("registry shares the caller's shop: %+v %+v", s.Channels, s.VVTool)
		}
	})
	for _, tc := range []struct {
		name string
		shop Shop
		want string
	}{
		{"bad id", Shop{ID: "Acme", VVTool: &VVTool{Token: "t", ShopIDs: []string{"1"}}}, `shops: id: "Acme" is not a shop id`},
		{"secret without appid", Shop{Channels: &Channels{Secret: "sekrit-s"}}, "shops: channels.appid (shop default): is required"},
		{"secret and fixed token", Shop{Channels: &Channels{AppID: "wx", Secret: "sekrit-s", AccessToken: "sekrit-t"}}, "not both"},
		{"push key without appid", Shop{Channels: &Channels{AccessToken: "sekrit-t", PushToken: "sekrit-p", PushAESKey: aesKey}}, "channels.appid (shop default): is required"},
		{"short push key", Shop{Channels: &Channels{AppID: "wx", AccessToken: "sekrit-t", PushToken: "sekrit-p", PushAESKey: "sekrit-short"}}, "channels.push_aes_key (shop default): must be a WeChat EncodingAESKey"},
		{"vv-tool without shops", Shop{VVTool: &VVTool{Token: "sekrit-t"}}, "vvtool.shop_ids (shop default): is required"},
		{"vv-tool shop id blank", Shop{VVTool: &VVTool{Token: "sekrit-t", ShopIDs: []string{" "}}}, "vvtool.shop_ids[0] (shop default): must be a vv-tool shop id"},
		{"concurrency too high", Shop{VVTool: &VVTool{Token: "sekrit-t", ShopIDs: []string{"1"}}, ShipConcurrency: 5000}, "ship_concurrency (shop default): must be from 1 to 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Single(tc.shop)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), leak) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error holds a secret or a line break: %q", err)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	parse := func(y string) *Registry {
		t.Helper()
		r, err := Parse([]byte(y), getenv, readFile)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := parse(`shops: [{id: c, vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}},
  {id: a, vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}},
  {id: b, vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}}]`)
	if !reflect.DeepEqual(a.IDs(), []string{"a", "b", "c"}) || a.Len() != 3 {
		t.Fatalf("ids %v", a.IDs())
	}
	shops := a.Shops()
	for i, id := range a.IDs() {
		if s, ok := a.Shop(id); !ok || s != shops[i] {
			t.Fatalf("Shop(%s) = %v, %v", id, s, ok)
		}
	}
	shops[0] = nil // the slice is the caller's
	if a.Shops()[0] == nil {
		t.Fatal("Shops shares its slice")
	}
	if _, ok := a.Shop("z"); ok {
		t.Fatal("Shop(z) found")
	}

	b := parse(`shops: [{id: a, vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}},
  {id: b, vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [2]}},
  {id: d, vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}}]`)
	added, removed, changed := Diff(a, b)
	if !reflect.DeepEqual(added, []string{"d"}) || !reflect.DeepEqual(removed, []string{"c"}) || !reflect.DeepEqual(changed, []string{"b"}) {
		t.Fatalf("Diff: added %v removed %v changed %v", added, removed, changed)
	}
	if added, removed, changed := Diff(nil, a); len(added) != 3 || removed != nil || changed != nil {
		t.Fatalf("Diff from nil: %v %v %v", added, removed, changed)
	}
	if a.Equal(b) || !a.Equal(parse("# same shops, other text\n"+`shops: [{id: a, vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}},
  {id: b, vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}}, {id: c, vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}}]`)) {
		t.Fatal("Equal")
	}
	if !(*Registry)(nil).Equal(nil) || a.Equal(nil) {
		t.Fatal("Equal with nil")
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "0": true, "acme_eu-2": true, strings.Repeat("a", 32): true,
		"": false, strings.Repeat("a", 33): false, "_a": false, "-a": false, "A": false, "a.b": false, "a b": false, "a*": false, "a>": false,
	} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v", id, !want)
		}
	}
}
