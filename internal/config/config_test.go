package config_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/config"
)

// env is a getenv backed by a map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// minimal is the smallest environment each binary starts with.
func minimal(binary string) map[string]string {
	switch binary {
	case config.Ingest:
		return map[string]string{"WECHAT_APPID": "wx1", "WECHAT_APPSECRET": "s3cr3t", "INGEST_DELIVERY_ID": "SF"}
	case config.Enricher, config.Shipper:
		return map[string]string{"WECHAT_APPID": "wx1", "WECHAT_APPSECRET": "s3cr3t"}
	}
	return map[string]string{}
}

func parse(t *testing.T, binary string, m map[string]string, flags ...string) (*config.Config, error) {
	t.Helper()
	var stderr bytes.Buffer
	c, err := config.Parse(binary, "summary", append([]string{binary}, flags...), env(m), &stderr)
	if err == nil && stderr.Len() > 0 {
		t.Errorf("Parse wrote to stderr without --help: %q", stderr.String())
	}
	return c, err
}

func mustParse(t *testing.T, binary string, m map[string]string, flags ...string) *config.Config {
	t.Helper()
	c, err := parse(t, binary, m, flags...)
	if err != nil {
		t.Fatalf("Parse(%s, %v, %v): %v", binary, m, flags, err)
	}
	return c
}

func TestDefaultsIngest(t *testing.T) {
	c := mustParse(t, config.Ingest, minimal(config.Ingest))
	checks := []struct {
		name      string
		got, want any
	}{
		{"Binary", c.Binary, "ingest"},
		{"NATS_URL", c.NATSURL, "nats://127.0.0.1:4222"},
		{"NATS_CREDS", c.NATSCreds, ""},
		{"STREAM_REPLICAS", c.StreamReplicas, 1},
		{"STREAM_MAX_AGE", c.StreamMaxAge, 168 * time.Hour},
		{"ADMIN_ADDR", c.AdminAddr, "127.0.0.1:9101"},
		{"LOG_LEVEL", c.LogLevel, "info"},
		{"LOG_FORMAT", c.LogFormat, "json"},
		{"WECHAT_API_BASE", c.WeChatAPIBase, "https://api.weixin.qq.com"},
		{"WECHAT_ACCESS_TOKEN", c.WeChatAccessToken, ""},
		{"INGEST_SOURCES", c.IngestSources, []string{"channels"}},
		{"INGEST_POLL_INTERVAL", c.IngestPollInterval, 30 * time.Second},
		{"INGEST_LOOKBACK", c.IngestLookback, 24 * time.Hour},
		{"INGEST_DELIVERY_ID", c.IngestDeliveryID, "SF"},
		{"INGEST_HTTP_ADDR", c.IngestHTTPAddr, ":8080"},
		{"INGEST_API_TOKEN", c.IngestAPIToken, ""},
		{"VVTOOL_API_BASE", c.VVToolAPIBase, "http://api.vv-tool.com"},
		{"VVTOOL_TOKEN", c.VVToolToken, ""},
		{"VVTOOL_SHOP_IDS", c.VVToolShopIDs, []string(nil)},
		// Not read by ingest: left zero.
		{"ENRICH_BATCH_SIZE", c.EnrichBatchSize, 0},
		{"SHIP_CONCURRENCY", c.ShipConcurrency, 0},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
	if !c.HasSource("channels") || c.HasSource("vvtool") {
		t.Errorf("HasSource: channels %v vvtool %v", c.HasSource("channels"), c.HasSource("vvtool"))
	}
}

func TestDefaultsEnricher(t *testing.T) {
	c := mustParse(t, config.Enricher, minimal(config.Enricher))
	if c.AdminAddr != "127.0.0.1:9102" || c.EnrichBatchSize != 100 || c.EnrichMaxWait != 200*time.Millisecond ||
		c.StreamReplicas != 1 || c.StreamMaxAge != 168*time.Hour || c.NATSURL != "nats://127.0.0.1:4222" ||
		c.WeChatAPIBase != "https://api.weixin.qq.com" {
		t.Errorf("enricher defaults: %+v", c)
	}
	if c.ShipConcurrency != 0 || c.IngestSources != nil {
		t.Errorf("enricher parsed variables of other binaries: %+v", c)
	}
}

func TestDefaultsShipper(t *testing.T) {
	c := mustParse(t, config.Shipper, minimal(config.Shipper))
	if c.AdminAddr != "127.0.0.1:9103" || c.ShipConcurrency != 32 || c.ShipBackoffInitial != 500*time.Millisecond ||
		c.ShipBackoffMax != 30*time.Second || c.ShipMaxElapsed != 15*time.Minute ||
		c.StreamReplicas != 1 || c.StreamMaxAge != 168*time.Hour {
		t.Errorf("shipper defaults: %+v", c)
	}
	if c.EnrichBatchSize != 0 {
		t.Errorf("shipper parsed ENRICH_BATCH_SIZE")
	}
}

func TestDefaultsFulfillctl(t *testing.T) {
	c := mustParse(t, config.Fulfillctl, nil)
	if c.NATSURL != "nats://127.0.0.1:4222" {
		t.Errorf("NATSURL = %q", c.NATSURL)
	}
	var names []string
	for _, v := range config.VarsFor(config.Fulfillctl) {
		names = append(names, v.Name)
	}
	if !reflect.DeepEqual(names, []string{"NATS_URL", "NATS_CREDS"}) {
		t.Errorf("fulfillctl reads %v, want NATS_URL, NATS_CREDS", names)
	}
}

// The DESIGN.md table, as data: every variable, who reads it, its default.
func TestDesignTable(t *testing.T) {
	all := []string{config.Ingest, config.Enricher, config.Shipper}
	rows := []struct {
		name     string
		users    []string
		defaults map[string]string // by binary; "*" for all users
	}{
		{"NATS_URL", all, map[string]string{"*": "nats://127.0.0.1:4222"}},
		{"NATS_CREDS", all, map[string]string{"*": ""}},
		{"STREAM_REPLICAS", all, map[string]string{"*": "1"}},
		{"STREAM_MAX_AGE", all, map[string]string{"*": "168h"}},
		// Loopback outside containers (the Dockerfile and manifests set
		// :910x): the admin endpoints have no auth.
		{"ADMIN_ADDR", all, map[string]string{config.Ingest: "127.0.0.1:9101", config.Enricher: "127.0.0.1:9102", config.Shipper: "127.0.0.1:9103"}},
		{"ADMIN_PPROF", all, map[string]string{"*": "false"}},
		{"STREAM_MAX_BYTES", all, map[string]string{"*": "10GiB"}},
		{"STREAM_UPDATE", all, map[string]string{"*": "false"}},
		{"LOG_LEVEL", all, map[string]string{"*": "info"}},
		{"LOG_FORMAT", all, map[string]string{"*": "json"}},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", all, map[string]string{"*": ""}},
		{"WECHAT_API_BASE", all, map[string]string{"*": "https://api.weixin.qq.com"}},
		{"WECHAT_APPID", all, map[string]string{"*": ""}},
		{"WECHAT_APPSECRET", all, map[string]string{"*": ""}},
		{"WECHAT_ACCESS_TOKEN", all, map[string]string{"*": ""}},
		{"INGEST_SOURCES", []string{config.Ingest}, map[string]string{"*": "channels"}},
		{"INGEST_POLL_INTERVAL", []string{config.Ingest}, map[string]string{"*": "30s"}},
		{"INGEST_LOOKBACK", []string{config.Ingest}, map[string]string{"*": "24h"}},
		{"INGEST_DELIVERY_ID", []string{config.Ingest}, map[string]string{"*": ""}},
		{"INGEST_HTTP_ADDR", []string{config.Ingest}, map[string]string{"*": ":8080"}},
		{"INGEST_API_TOKEN", []string{config.Ingest}, map[string]string{"*": ""}},
		{"VVTOOL_API_BASE", []string{config.Ingest}, map[string]string{"*": "http://api.vv-tool.com"}},
		{"VVTOOL_TOKEN", []string{config.Ingest}, map[string]string{"*": ""}},
		{"VVTOOL_SHOP_IDS", []string{config.Ingest}, map[string]string{"*": ""}},
		{"ENRICH_BATCH_SIZE", []string{config.Enricher}, map[string]string{"*": "100"}},
		{"ENRICH_MAX_WAIT", []string{config.Enricher}, map[string]string{"*": "200ms"}},
		{"SHIP_CONCURRENCY", []string{config.Shipper}, map[string]string{"*": "32"}},
		{"SHIP_BACKOFF_INITIAL", []string{config.Shipper}, map[string]string{"*": "500ms"}},
		{"SHIP_BACKOFF_MAX", []string{config.Shipper}, map[string]string{"*": "30s"}},
		{"SHIP_MAX_ELAPSED", []string{config.Shipper}, map[string]string{"*": "15m"}},
	}
	for _, r := range rows {
		v, ok := config.Lookup(r.name)
		if !ok {
			t.Errorf("%s is missing from the table", r.name)
			continue
		}
		for _, b := range all {
			used := false
			for _, u := range r.users {
				used = used || u == b
			}
			if v.Used(b) != used {
				t.Errorf("%s used by %s = %v, want %v", r.name, b, v.Used(b), used)
			}
			if !used {
				continue
			}
			want, ok := r.defaults[b]
			if !ok {
				want = r.defaults["*"]
			}
			if got := v.DefaultFor(b); got != want {
				t.Errorf("%s default for %s = %q, want %q", r.name, b, got, want)
			}
		}
		if want := strings.ToLower(strings.ReplaceAll(r.name, "_", "-")); v.Flag() != want {
			t.Errorf("%s flag = %q, want %q", r.name, v.Flag(), want)
		}
	}
	for _, secret := range []string{"WECHAT_APPSECRET", "WECHAT_ACCESS_TOKEN", "INGEST_API_TOKEN", "VVTOOL_TOKEN"} {
		if v, _ := config.Lookup(secret); !v.Secret {
			t.Errorf("%s is not marked Secret", secret)
		}
	}
	if _, ok := config.Lookup("NO_SUCH_VAR"); ok {
		t.Errorf("Lookup found NO_SUCH_VAR")
	}
}

func TestEnvOverridesDefault(t *testing.T) {
	m := minimal(config.Shipper)
	m["NATS_URL"] = "nats://a:4222,nats://b:4222"
	m["STREAM_REPLICAS"] = "3"
	m["STREAM_MAX_AGE"] = "72h"
	m["ADMIN_ADDR"] = "127.0.0.1:19103"
	m["SHIP_CONCURRENCY"] = "4"
	m["SHIP_BACKOFF_INITIAL"] = "1s"
	m["SHIP_BACKOFF_MAX"] = "1m"
	m["SHIP_MAX_ELAPSED"] = "1h"
	m["LOG_LEVEL"] = "debug"
	m["LOG_FORMAT"] = "console"
	m["WECHAT_API_BASE"] = "http://127.0.0.1:8081/"
	c := mustParse(t, config.Shipper, m)
	if c.NATSURL != "nats://a:4222,nats://b:4222" || c.StreamReplicas != 3 || c.StreamMaxAge != 72*time.Hour ||
		c.AdminAddr != "127.0.0.1:19103" || c.ShipConcurrency != 4 || c.ShipBackoffInitial != time.Second ||
		c.ShipBackoffMax != time.Minute || c.ShipMaxElapsed != time.Hour || c.LogLevel != "debug" || c.LogFormat != "console" {
		t.Errorf("environment not applied: %+v", c)
	}
	if c.WeChatAPIBase != "http://127.0.0.1:8081" {
		t.Errorf("WeChatAPIBase = %q, want the trailing slash trimmed", c.WeChatAPIBase)
	}
}

func TestFlagOverridesEnv(t *testing.T) {
	m := minimal(config.Shipper)
	m["SHIP_CONCURRENCY"] = "4"
	for _, flags := range [][]string{
		{"--ship-concurrency", "8"},
		{"--ship-concurrency=8"},
		{"-ship-concurrency", "8"},
	} {
		c := mustParse(t, config.Shipper, m, flags...)
		if c.ShipConcurrency != 8 {
			t.Errorf("%v: ShipConcurrency = %d, want 8 (flag beats env 4)", flags, c.ShipConcurrency)
		}
	}
	// A flag also overrides a default, and an explicit empty flag beats the env.
	c := mustParse(t, config.Ingest, map[string]string{"INGEST_SOURCES": "channels", "INGEST_API_TOKEN": "tok"}, "--ingest-sources=")
	if len(c.IngestSources) != 0 {
		t.Errorf("--ingest-sources= left %v", c.IngestSources)
	}
	c = mustParse(t, config.Enricher, minimal(config.Enricher), "--enrich-batch-size", "7", "--admin-addr", ":0")
	if c.EnrichBatchSize != 7 || c.AdminAddr != ":0" {
		t.Errorf("flags not applied: %d %q", c.EnrichBatchSize, c.AdminAddr)
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		binary, name, value string
	}{
		{config.Shipper, "STREAM_REPLICAS", "three"},
		{config.Shipper, "STREAM_REPLICAS", "0"},
		{config.Shipper, "STREAM_REPLICAS", "6"},
		{config.Shipper, "STREAM_MAX_AGE", "7d"},
		{config.Shipper, "STREAM_MAX_AGE", "1s"},
		{config.Shipper, "STREAM_MAX_AGE", "-1h"},
		{config.Shipper, "STREAM_MAX_AGE", "90s"}, // under the 2m duplicate window: the server would refuse it
		{config.Shipper, "STREAM_MAX_BYTES", "10 gigs"},
		{config.Shipper, "STREAM_MAX_BYTES", "-1"},
		{config.Shipper, "STREAM_MAX_BYTES", "99999999999GiB"},
		{config.Shipper, "STREAM_UPDATE", "yes please"},
		{config.Enricher, "ADMIN_PPROF", "on"},
		{config.Shipper, "LOG_LEVEL", "verbose"},
		{config.Shipper, "LOG_LEVEL", "INFO"},
		{config.Shipper, "LOG_FORMAT", "text"},
		{config.Shipper, "WECHAT_API_BASE", "api.weixin.qq.com"},
		{config.Shipper, "WECHAT_API_BASE", "ftp://x"},
		{config.Shipper, "SHIP_CONCURRENCY", "0"},
		{config.Shipper, "SHIP_CONCURRENCY", "-1"},
		{config.Shipper, "SHIP_CONCURRENCY", "8.5"},
		{config.Shipper, "SHIP_CONCURRENCY", " 8"},
		{config.Shipper, "SHIP_CONCURRENCY", "99999999999999999999"},
		{config.Shipper, "SHIP_BACKOFF_INITIAL", "500"},
		{config.Shipper, "SHIP_BACKOFF_MAX", "0s"},
		{config.Shipper, "SHIP_MAX_ELAPSED", "forever"},
		{config.Enricher, "ENRICH_BATCH_SIZE", "101"},
		{config.Enricher, "ENRICH_BATCH_SIZE", "0"},
		{config.Enricher, "ENRICH_BATCH_SIZE", "1e2"},
		{config.Enricher, "ENRICH_MAX_WAIT", "0"},
		{config.Enricher, "ENRICH_MAX_WAIT", "200"},
		{config.Ingest, "INGEST_SOURCES", "channels,shopify"},
		{config.Ingest, "INGEST_SOURCES", "none,vvtool"},
		{config.Ingest, "INGEST_POLL_INTERVAL", "1ms"},
		{config.Ingest, "INGEST_POLL_INTERVAL", "soon"},
		{config.Ingest, "INGEST_LOOKBACK", "1d"},
		{config.Ingest, "VVTOOL_API_BASE", "api.vv-tool.com"},
		{config.Shipper, "OTEL_EXPORTER_OTLP_ENDPOINT", "otel-collector:4318"},
		{config.Enricher, "OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://otel-collector:4317"},
		{config.Ingest, "LOG_LEVEL", "trace\nwith a newline"},
		{config.Ingest, "STREAM_MAX_AGE", "1h\n2h"},
	}
	for _, tt := range tests {
		for _, via := range []string{"env", "flag"} {
			t.Run(fmt.Sprintf("%s/%s=%q/%s", tt.binary, tt.name, tt.value, via), func(t *testing.T) {
				m := minimal(tt.binary)
				var flags []string
				if via == "env" {
					m[tt.name] = tt.value
				} else {
					v, _ := config.Lookup(tt.name)
					flags = []string{"--" + v.Flag() + "=" + tt.value}
				}
				c, err := parse(t, tt.binary, m, flags...)
				if err == nil {
					t.Fatalf("Parse accepted %s=%q: %+v", tt.name, tt.value, c)
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, tt.name+" ") {
					t.Errorf("error %q does not start with the variable %s", msg, tt.name)
				}
				if strings.ContainsAny(msg, "\n\r") {
					t.Errorf("error is not one line: %q", msg)
				}
				wantOrigin := "environment"
				if via == "flag" {
					wantOrigin = "flag --"
				}
				if !strings.Contains(msg, wantOrigin) {
					t.Errorf("error %q does not say the value came from the %s", msg, via)
				}
				if errors.Is(err, config.ErrHelp) {
					t.Errorf("bad value returned ErrHelp")
				}
			})
		}
	}
}

func TestBadArguments(t *testing.T) {
	for _, tc := range []struct {
		binary string
		args   []string
	}{
		{config.Shipper, []string{"--no-such-flag"}},
		{config.Enricher, []string{"--ship-concurrency", "8"}}, // another binary's variable
		{config.Fulfillctl, []string{"--stream-replicas", "3"}},
		{config.Shipper, []string{"extra"}},
		{config.Shipper, []string{"--ship-concurrency"}}, // missing value
	} {
		_, err := parse(t, tc.binary, minimal(tc.binary), tc.args...)
		if err == nil {
			t.Errorf("%s %v: accepted", tc.binary, tc.args)
			continue
		}
		if strings.ContainsAny(err.Error(), "\n\r") || !strings.Contains(err.Error(), "--help") {
			t.Errorf("%s %v: error %q should be one line pointing at --help", tc.binary, tc.args, err)
		}
	}
}

func TestCrossFieldChecks(t *testing.T) {
	tests := []struct {
		name    string
		binary  string
		env     map[string]string
		flags   []string
		wantErr string // "" = accepted
	}{
		{"ingest without wechat credentials", config.Ingest, map[string]string{"INGEST_DELIVERY_ID": "SF"}, nil, "WECHAT_APPID"},
		{"ingest with appid but no secret", config.Ingest, map[string]string{"INGEST_DELIVERY_ID": "SF", "WECHAT_APPID": "wx"}, nil, "WECHAT_APPSECRET"},
		{"ingest with a fixed token instead", config.Ingest, map[string]string{"INGEST_DELIVERY_ID": "SF", "WECHAT_ACCESS_TOKEN": "tok"}, nil, ""},
		{"ingest channels without delivery id", config.Ingest, map[string]string{"WECHAT_ACCESS_TOKEN": "tok"}, nil, "INGEST_DELIVERY_ID"},
		{"ingest vvtool without token", config.Ingest, map[string]string{"INGEST_SOURCES": "vvtool", "VVTOOL_SHOP_IDS": "1"}, nil, "VVTOOL_TOKEN"},
		{"ingest vvtool without shops", config.Ingest, map[string]string{"INGEST_SOURCES": "vvtool", "VVTOOL_TOKEN": "t"}, nil, "VVTOOL_SHOP_IDS"},
		{"ingest vvtool only needs no wechat", config.Ingest, map[string]string{"INGEST_SOURCES": "vvtool", "VVTOOL_TOKEN": "t", "VVTOOL_SHOP_IDS": "1,2"}, nil, ""},
		{"ingest vvtool shops only commas", config.Ingest, map[string]string{"INGEST_SOURCES": "vvtool", "VVTOOL_TOKEN": "t", "VVTOOL_SHOP_IDS": " , ,"}, nil, "VVTOOL_SHOP_IDS"},
		{"ingest none without api token", config.Ingest, map[string]string{"INGEST_SOURCES": "none"}, nil, "INGEST_API_TOKEN"},
		{"ingest none with api token", config.Ingest, map[string]string{"INGEST_SOURCES": "none", "INGEST_API_TOKEN": "tok"}, nil, ""},
		{"ingest none by flag", config.Ingest, map[string]string{"INGEST_API_TOKEN": "tok"}, []string{"--ingest-sources", "none"}, ""},
		{"ingest both sources", config.Ingest, map[string]string{"INGEST_SOURCES": "channels, vvtool", "WECHAT_ACCESS_TOKEN": "x", "INGEST_DELIVERY_ID": "SF", "VVTOOL_TOKEN": "t", "VVTOOL_SHOP_IDS": "1"}, nil, ""},
		{"enricher without wechat credentials", config.Enricher, nil, nil, "WECHAT_APPID"},
		{"shipper without wechat credentials", config.Shipper, nil, nil, "WECHAT_APPID"},
		{"shipper backoff initial over max", config.Shipper, map[string]string{"WECHAT_ACCESS_TOKEN": "x", "SHIP_BACKOFF_INITIAL": "1m", "SHIP_BACKOFF_MAX": "30s"}, nil, "SHIP_BACKOFF_INITIAL"},
		{"shipper backoff initial equal max", config.Shipper, map[string]string{"WECHAT_ACCESS_TOKEN": "x", "SHIP_BACKOFF_INITIAL": "30s"}, nil, ""},
		{"fulfillctl needs nothing", config.Fulfillctl, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.binary, tt.env, tt.flags...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted %+v, want an error naming %s", c, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q should be one line naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestIngestSourcesNone(t *testing.T) {
	c := mustParse(t, config.Ingest, map[string]string{"INGEST_SOURCES": "none", "INGEST_API_TOKEN": "tok"})
	if len(c.IngestSources) != 0 || c.HasSource("channels") || c.HasSource("vvtool") {
		t.Errorf("INGEST_SOURCES=none gave %v", c.IngestSources)
	}
	// An empty variable is the same as an unset one: the default applies.
	c = mustParse(t, config.Ingest, map[string]string{"INGEST_SOURCES": "", "WECHAT_ACCESS_TOKEN": "x", "INGEST_DELIVERY_ID": "SF"})
	if !reflect.DeepEqual(c.IngestSources, []string{"channels"}) {
		t.Errorf("INGEST_SOURCES= (empty) gave %v, want the default", c.IngestSources)
	}
	c = mustParse(t, config.Ingest, map[string]string{"INGEST_SOURCES": " vvtool ,, channels ", "WECHAT_ACCESS_TOKEN": "x",
		"INGEST_DELIVERY_ID": "SF", "VVTOOL_TOKEN": "t", "VVTOOL_SHOP_IDS": " 10 , 20,,"})
	if !reflect.DeepEqual(c.IngestSources, []string{"vvtool", "channels"}) || !reflect.DeepEqual(c.VVToolShopIDs, []string{"10", "20"}) {
		t.Errorf("lists not trimmed: %v %v", c.IngestSources, c.VVToolShopIDs)
	}
}

func TestHelp(t *testing.T) {
	for _, binary := range []string{config.Ingest, config.Enricher, config.Shipper, config.Fulfillctl} {
		for _, arg := range []string{"--help", "-h", "-help"} {
			t.Run(binary+arg, func(t *testing.T) {
				var out bytes.Buffer
				// Help works even when the configuration would be refused,
				// and never prints a secret from the environment.
				m := map[string]string{"WECHAT_APPSECRET": "topsecret-app", "INGEST_API_TOKEN": "topsecret-api", "SHIP_CONCURRENCY": "bad"}
				c, err := config.Parse(binary, "one-line summary", []string{binary, arg}, env(m), &out)
				if !errors.Is(err, config.ErrHelp) || !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("Parse(%s) = %v, %v; want ErrHelp", arg, c, err)
				}
				if c != nil {
					t.Errorf("Parse returned a config with ErrHelp")
				}
				help := out.String()
				if !strings.Contains(help, "one-line summary") {
					t.Errorf("help lacks the summary:\n%s", help)
				}
				if strings.Contains(help, "topsecret") {
					t.Errorf("help printed a secret from the environment:\n%s", help)
				}
				lines := strings.Split(help, "\n")
				for _, v := range config.VarsFor(binary) {
					def := v.DefaultFor(binary)
					if def == "" {
						def = "(unset)"
					}
					found := false
					for _, l := range lines {
						f := strings.Fields(l)
						if len(f) >= 3 && f[0] == v.Name && f[1] == "--"+v.Flag() && f[2] == def {
							found = true
						}
					}
					if !found {
						t.Errorf("help has no line %q --%s %s:\n%s", v.Name, v.Flag(), def, help)
					}
				}
				// Variables of other binaries are not listed.
				for _, v := range config.Vars {
					if !v.Used(binary) && strings.Contains(help, v.Name+" ") {
						t.Errorf("help of %s lists %s, which it does not read", binary, v.Name)
					}
				}
			})
		}
	}
}

func TestPrintHelpMarksSecrets(t *testing.T) {
	var out bytes.Buffer
	config.PrintHelp(&out, config.Ingest, "s")
	for _, l := range strings.Split(out.String(), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if v, ok := config.Lookup(f[0]); ok && v.Secret && !strings.Contains(l, "secret") {
			t.Errorf("secret %s not marked in help: %q", v.Name, l)
		}
	}
}

func TestRedacted(t *testing.T) {
	secrets := map[string]string{
		"WECHAT_APPSECRET":    "appsecret-0f9e8d",
		"WECHAT_ACCESS_TOKEN": "access-token-7c6b5a",
		"INGEST_API_TOKEN":    "api-token-4e3d2c",
		"VVTOOL_TOKEN":        "vv-token-1b0a99",
	}
	m := map[string]string{"WECHAT_APPID": "wx-public-id", "INGEST_DELIVERY_ID": "SF", "INGEST_SOURCES": "channels,vvtool", "VVTOOL_SHOP_IDS": "1"}
	for k, v := range secrets {
		m[k] = v
	}
	c := mustParse(t, config.Ingest, m)
	r := c.Redacted()
	all := fmt.Sprint(r)
	for name, val := range secrets {
		if strings.Contains(all, val) {
			t.Errorf("Redacted() contains the value of %s: %v", name, r)
		}
		if r[name] != "set" {
			t.Errorf("Redacted()[%s] = %q, want \"set\"", name, r[name])
		}
	}
	if r["WECHAT_APPID"] != "wx-public-id" || r["INGEST_SOURCES"] != "channels,vvtool" || r["NATS_URL"] != "nats://127.0.0.1:4222" {
		t.Errorf("Redacted() hides non-secrets: %v", r)
	}
	// Every variable of the binary is reported, nothing else.
	var want []string
	for _, v := range config.VarsFor(config.Ingest) {
		want = append(want, v.Name)
		if _, ok := r[v.Name]; !ok {
			t.Errorf("Redacted() lacks %s", v.Name)
		}
	}
	if len(r) != len(want) {
		t.Errorf("Redacted() has %d entries, want %d", len(r), len(want))
	}

	// Unset secrets say so; secrets given by flag are hidden too.
	c = mustParse(t, config.Shipper, map[string]string{"WECHAT_APPID": "wx"}, "--wechat-appsecret", "flag-secret-5d5d")
	r = c.Redacted()
	if r["WECHAT_ACCESS_TOKEN"] != "unset" || r["WECHAT_APPSECRET"] != "set" || strings.Contains(fmt.Sprint(r), "flag-secret-5d5d") {
		t.Errorf("Redacted() = %v", r)
	}
}

// NATS_URL is not a Secret, but credentials embedded in it
// (nats://user:password@host, the common way to pass them) must not reach
// the start-up log through Redacted.
func TestRedactedHidesURLCredentials(t *testing.T) {
	m := minimal(config.Shipper)
	m["NATS_URL"] = "nats://fulfill:hunter2-pw@nats-0:4222,nats://fulfill:hunter2-pw@nats-1:4222"
	c := mustParse(t, config.Shipper, m)
	if got := fmt.Sprint(c.Redacted()); strings.Contains(got, "hunter2-pw") {
		t.Fatalf("Redacted() leaks the NATS password: %s", got)
	}
}

// With token auth the user part of the URL is the secret: every kind of
// user info goes, whatever it looks like.
func TestRedactURLs(t *testing.T) {
	tests := []struct {
		in, want string
		secrets  []string
	}{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222", nil},
		{"nats://s3cr3t-t0ken@nats:4222", "nats://REDACTED@nats:4222", []string{"s3cr3t-t0ken"}},
		{"nats://fulfill:hunter2@nats:4222", "nats://REDACTED@nats:4222", []string{"hunter2", "fulfill"}},
		{"nats://UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4:SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY@nats:4222",
			"nats://REDACTED@nats:4222", []string{"UDXU4RCSJNZOIQ", "SUACSSL3UAHUDXKF"}},
		{"nats://a:b@n1:4222, nats://tok@n2:4222,nats://n3:4222", "nats://REDACTED@n1:4222,nats://REDACTED@n2:4222,nats://n3:4222", []string{":b@", "tok"}},
		{"nats://%zz:pw@host", "(unparsable URL)", []string{"pw"}},
	}
	for _, tt := range tests {
		got := config.RedactURLs(tt.in)
		if got != tt.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for _, sec := range tt.secrets {
			if strings.Contains(got, sec) {
				t.Errorf("RedactURLs(%q) = %q leaks %q", tt.in, got, sec)
			}
		}
	}
}

func TestByteSizes(t *testing.T) {
	for v, want := range map[string]int64{"10GiB": 10 << 30, "512MiB": 512 << 20, "1GB": 1e9, "0": 0, "4096": 4096, "64 KiB": 64 << 10, "2TB": 2e12} {
		m := minimal(config.Shipper)
		m["STREAM_MAX_BYTES"] = v
		if c := mustParse(t, config.Shipper, m); c.StreamMaxBytes != want {
			t.Errorf("STREAM_MAX_BYTES=%q = %d, want %d", v, c.StreamMaxBytes, want)
		}
	}
}
