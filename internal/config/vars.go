package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fulfill/pipeline/pkg/events"
)

// Binary names, as used in Var.UsedBy.
const (
	Ingest     = "ingest"
	Enricher   = "enricher"
	Shipper    = "shipper"
	Fulfillctl = "fulfillctl"
)

// Var is one environment variable.
type Var struct {
	// Name is the environment variable, e.g. NATS_URL.
	Name string
	// Default is the value used when the variable is unset; Defaults
	// overrides it per binary.
	Default  string
	Defaults map[string]string
	// Usage is the --help line.
	Usage string
	// UsedBy lists the binaries that read it; empty means all services.
	UsedBy []string
	// Secret hides the value in --help output and logs.
	Secret bool
	set    func(c *Config, v string) error
}

// Flag is the command-line flag that overrides the variable: NATS_URL is
// --nats-url.
func (v Var) Flag() string { return strings.ToLower(strings.ReplaceAll(v.Name, "_", "-")) }

// DefaultFor is the default value of v for binary.
func (v Var) DefaultFor(binary string) string {
	if d, ok := v.Defaults[binary]; ok {
		return d
	}
	return v.Default
}

// Used reports whether binary reads v.
func (v Var) Used(binary string) bool {
	if len(v.UsedBy) == 0 {
		return binary != Fulfillctl || v.Name == "NATS_URL" || v.Name == "NATS_CREDS"
	}
	for _, b := range v.UsedBy {
		if b == binary {
			return true
		}
	}
	return false
}

var wechatUsers = []string{Ingest, Enricher, Shipper}

// Vars is the table: every variable any binary reads.
var Vars = []Var{
	{Name: "NATS_URL", Default: "nats://127.0.0.1:4222", Usage: "NATS server URLs, comma-separated",
		set: func(c *Config, v string) error { c.NATSURL = v; return nonEmpty(v) }},
	{Name: "NATS_CREDS", Usage: "path to a NATS .creds file (unset: no credentials)",
		set: func(c *Config, v string) error { c.NATSCreds = v; return nil }},
	{Name: "STREAM_REPLICAS", Default: "1", Usage: "replicas of the ORDERS stream (3 in a cluster)",
		set: func(c *Config, v string) error { return intIn(&c.StreamReplicas, v, 1, 5) }},
	{Name: "STREAM_MAX_AGE", Default: "168h", Usage: "how long the ORDERS stream keeps events (the replay horizon; at least the 2m duplicate window, and at least the longest an order may wait in the service)",
		set: func(c *Config, v string) error {
			if err := duration(&c.StreamMaxAge, v, time.Second); err != nil {
				return err
			}
			if c.StreamMaxAge < events.DuplicateWindow {
				return fmt.Errorf("%s is shorter than the stream's %s duplicate window (the server refuses it)", c.StreamMaxAge, events.DuplicateWindow)
			}
			return nil
		}},
	{Name: "STREAM_MAX_BYTES", Default: "10GiB", Usage: "storage bound of the ORDERS stream (e.g. 512MiB, 10GiB; 0 for none); a full stream refuses new orders (the API answers 503), it never drops stored ones",
		set: func(c *Config, v string) error { return byteSize(&c.StreamMaxBytes, v) }},
	{Name: "STREAM_UPDATE", Default: "false", Usage: "update an existing ORDERS stream to these STREAM_* settings; by default a service only creates a missing stream and never changes a shared one",
		set: func(c *Config, v string) error { return boolean(&c.StreamUpdate, v) }},
	{Name: "ADMIN_ADDR", Defaults: map[string]string{Ingest: "127.0.0.1:9101", Enricher: "127.0.0.1:9102", Shipper: "127.0.0.1:9103"},
		Usage: "address of /healthz, /readyz and /metrics (loopback by default; containers set :9101…:9103)",
		set:   func(c *Config, v string) error { c.AdminAddr = v; return nonEmpty(v) }},
	{Name: "ADMIN_PPROF", Default: "false", Usage: "serve /debug/pprof/ on ADMIN_ADDR (no auth: only on a trusted network)",
		set: func(c *Config, v string) error { return boolean(&c.AdminPprof, v) }},
	{Name: "LOG_LEVEL", Default: "info", Usage: "debug, info, warn or error",
		set: func(c *Config, v string) error {
			switch v {
			case "debug", "info", "warn", "error":
				c.LogLevel = v
				return nil
			}
			return fmt.Errorf("want debug, info, warn or error")
		}},
	{Name: "LOG_FORMAT", Default: "json", Usage: "json, or console for people",
		set: func(c *Config, v string) error {
			if v != "json" && v != "console" {
				return fmt.Errorf("want json or console")
			}
			c.LogFormat = v
			return nil
		}},
	{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Usage: "OTLP endpoint to export traces to, e.g. http://otel-collector:4318 (unset: tracing off, at no cost); the standard OTEL_* variables apply: OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf or grpc), OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_HEADERS…",
		set: func(c *Config, v string) error {
			c.OTLPEndpoint = v
			if v == "" {
				return nil
			}
			return httpURL(RedactURLs(v)) // an endpoint may carry credentials
		}},
	{Name: "SHOPS_FILE", UsedBy: wechatUsers, Usage: "YAML file of the shops served, secrets by reference (README, Many shops); unset: the account variables below define one shop, default",
		set: func(c *Config, v string) error { c.ShopsFile = v; return nil }},
	{Name: "SHOPS_RELOAD_INTERVAL", Default: "10s", UsedBy: wechatUsers, Usage: "how often SHOPS_FILE (and the secret files it names) is checked for changes; SIGHUP re-reads it at once",
		set: func(c *Config, v string) error { return duration(&c.ShopsReloadInterval, v, 10*time.Millisecond) }},
	{Name: "WECHAT_API_BASE", Default: "https://api.weixin.qq.com", UsedBy: wechatUsers, Usage: "base URL of the WeChat APIs",
		set: func(c *Config, v string) error { c.WeChatAPIBase = strings.TrimRight(v, "/"); return httpURL(v) }},
	{Name: "WECHAT_APPID", UsedBy: wechatUsers, Usage: "app id for POST /cgi-bin/stable_token",
		set: func(c *Config, v string) error { c.WeChatAppID = v; return nil }},
	{Name: "WECHAT_APPSECRET", UsedBy: wechatUsers, Secret: true, Usage: "app secret for POST /cgi-bin/stable_token",
		set: func(c *Config, v string) error { c.WeChatAppSecret = v; return nil }},
	{Name: "WECHAT_ACCESS_TOKEN", UsedBy: wechatUsers, Secret: true, Usage: "a fixed token (third-party authorizer_access_token) instead of appid/secret",
		set: func(c *Config, v string) error { c.WeChatAccessToken = v; return nil }},
	{Name: "WECHAT_PUSH_TOKEN", UsedBy: []string{Ingest}, Secret: true, Usage: "the Token of the shop back office's 消息推送 page: turns on push ingest at INGEST_HTTP_ADDR /v1/wechat/push/default (with WECHAT_PUSH_AES_KEY)",
		set: func(c *Config, v string) error { c.WeChatPushToken = v; return nil }},
	{Name: "WECHAT_PUSH_AES_KEY", UsedBy: []string{Ingest}, Secret: true, Usage: "the EncodingAESKey (43 characters) of the 消息推送 page, security mode",
		set: func(c *Config, v string) error { c.WeChatPushAESKey = v; return nil }},
	{Name: "WECHAT_PUSH_AES_KEY_PREVIOUS", UsedBy: []string{Ingest}, Secret: true, Usage: "the EncodingAESKey being rotated out, still accepted",
		set: func(c *Config, v string) error { c.WeChatPushAESKeyPrevious = v; return nil }},
	{Name: "INGEST_SOURCES", Default: "channels", UsedBy: []string{Ingest}, Usage: "pollers to run: comma list of channels, vvtool; none for the HTTP API only",
		set: func(c *Config, v string) error {
			c.IngestSources = nil
			for _, s := range splitList(v) {
				if s != "channels" && s != "vvtool" {
					return fmt.Errorf("unknown source %q: want channels or vvtool", s)
				}
				c.IngestSources = append(c.IngestSources, s)
			}
			return nil
		}},
	{Name: "INGEST_POLL_INTERVAL", Default: "30s", UsedBy: []string{Ingest}, Usage: "time between polls of each source",
		set: func(c *Config, v string) error { return duration(&c.IngestPollInterval, v, 10*time.Millisecond) }},
	{Name: "INGEST_LOOKBACK", Default: "24h", UsedBy: []string{Ingest}, Usage: "how far back the first poll looks when there is no checkpoint",
		set: func(c *Config, v string) error { return duration(&c.IngestLookback, v, time.Second) }},
	{Name: "INGEST_DELIVERY_ID", UsedBy: []string{Ingest}, Usage: "carrier id given to polled Channels orders, e.g. SF; required with channels",
		set: func(c *Config, v string) error { c.IngestDeliveryID = v; return nil }},
	{Name: "INGEST_HTTP_ADDR", Default: ":8080", UsedBy: []string{Ingest}, Usage: "address of the order HTTP API",
		set: func(c *Config, v string) error { c.IngestHTTPAddr = v; return nonEmpty(v) }},
	{Name: "INGEST_API_TOKEN", UsedBy: []string{Ingest}, Secret: true, Usage: "bearer token of the HTTP API; the API is off when unset",
		set: func(c *Config, v string) error { c.IngestAPIToken = v; return nil }},
	{Name: "VVTOOL_API_BASE", Default: "http://api.vv-tool.com", UsedBy: []string{Ingest}, Usage: "base URL of the vv-tool API",
		set: func(c *Config, v string) error { c.VVToolAPIBase = strings.TrimRight(v, "/"); return httpURL(v) }},
	{Name: "VVTOOL_TOKEN", UsedBy: []string{Ingest}, Secret: true, Usage: "vv-tool bearer token; required with vvtool",
		set: func(c *Config, v string) error { c.VVToolToken = v; return nil }},
	{Name: "VVTOOL_SHOP_IDS", UsedBy: []string{Ingest}, Usage: "comma list of vv-tool shop ids to poll; required with vvtool",
		set: func(c *Config, v string) error { c.VVToolShopIDs = splitList(v); return nil }},
	{Name: "ENRICH_BATCH_SIZE", Default: "100", UsedBy: []string{Enricher}, Usage: "orders per batchGetOrder call (max 100)",
		set: func(c *Config, v string) error { return intIn(&c.EnrichBatchSize, v, 1, 100) }},
	{Name: "ENRICH_MAX_WAIT", Default: "200ms", UsedBy: []string{Enricher}, Usage: "longest wait to fill a batch",
		set: func(c *Config, v string) error { return duration(&c.EnrichMaxWait, v, time.Millisecond) }},
	{Name: "ENRICH_ACK_WAIT", Default: "10s", UsedBy: []string{Enricher},
		Usage: "ack wait of the enricher consumer: a killed enricher's batches go to another replica after this long (batches are reported in progress every quarter of it)",
		set:   func(c *Config, v string) error { return duration(&c.EnrichAckWait, v, time.Second) }},
	{Name: "SHIP_CONCURRENCY", Default: "32", UsedBy: []string{Shipper}, Usage: "delivery/send calls in flight per process",
		set: func(c *Config, v string) error { return intIn(&c.ShipConcurrency, v, 1, 4096) }},
	{Name: "SHIP_SHOP_CONCURRENCY", Default: "8", UsedBy: []string{Shipper}, Usage: "delivery/send calls in flight per process for one shop (a shop's ship_concurrency overrides it), so no shop starves the others; without SHOPS_FILE the one shop may use all of SHIP_CONCURRENCY",
		set: func(c *Config, v string) error { return intIn(&c.ShipShopConcurrency, v, 1, 4096) }},
	{Name: "SHIP_BACKOFF_INITIAL", Default: "500ms", UsedBy: []string{Shipper}, Usage: "first retry delay of a transient error",
		set: func(c *Config, v string) error { return duration(&c.ShipBackoffInitial, v, time.Millisecond) }},
	{Name: "SHIP_BACKOFF_MAX", Default: "30s", UsedBy: []string{Shipper}, Usage: "longest retry delay",
		set: func(c *Config, v string) error { return duration(&c.ShipBackoffMax, v, time.Millisecond) }},
	{Name: "SHIP_MAX_ELAPSED", Default: "15m", UsedBy: []string{Shipper}, Usage: "give up on transient errors after this long; the order ends failed",
		set: func(c *Config, v string) error { return duration(&c.ShipMaxElapsed, v, time.Millisecond) }},
	{Name: "SHIP_WAIT_DELAY", Default: "10m", UsedBy: []string{Shipper}, Usage: "redelivery delay of an order the platform keeps waiting (the waiting codes 45009, 108009, 606049, 10020115, 10020276; see below)",
		set: func(c *Config, v string) error { return duration(&c.ShipWaitDelay, v, time.Millisecond) }},
	{Name: "SHIP_WAIT_MAX_ATTEMPTS", Default: "144", UsedBy: []string{Shipper}, Usage: "waiting-on-merchant attempts before the order ends failed (144 × 10m = 1 day, counted from the order's first waiting answer)",
		set: func(c *Config, v string) error { return intIn(&c.ShipWaitMaxAttempts, v, 1, 1_000_000) }},
	{Name: "SHIP_ACK_WAIT", Default: "3s", UsedBy: []string{Shipper},
		Usage: "ack wait of the shipper consumer: a killed replica's orders go to another after this long; the order's lease lives SHIP_ACK_WAIT - SHIP_HEARTBEAT",
		set:   func(c *Config, v string) error { return duration(&c.ShipAckWait, v, 300*time.Millisecond) }},
	{Name: "SHIP_HEARTBEAT", Default: "750ms", UsedBy: []string{Shipper},
		Usage: "how often a held order is reported in progress and its lease renewed; at most a third of SHIP_ACK_WAIT",
		set:   func(c *Config, v string) error { return duration(&c.ShipHeartbeat, v, 50*time.Millisecond) }},
}

func nonEmpty(v string) error {
	if v == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

func httpURL(v string) error {
	if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
		return fmt.Errorf("%q is not an http(s) URL", v)
	}
	return nil
}

func intIn(dst *int, v string, lo, hi int) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", v)
	}
	if n < lo || n > hi {
		return fmt.Errorf("%d is out of range %d..%d", n, lo, hi)
	}
	*dst = n
	return nil
}

func duration(dst *time.Duration, v string, min time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 30s or 5m", v)
	}
	if d < min {
		return fmt.Errorf("%s is shorter than the minimum %s", d, min)
	}
	*dst = d
	return nil
}

func boolean(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not true or false", v)
	}
	*dst = b
	return nil
}

func byteSize(dst *int64, v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*dst = n
	return nil
}

// ParseSize reads a size such as 512MiB, 10GiB, 1GB or a plain number of
// bytes.
func ParseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || (mult > 1 && n > (1<<62)/mult) {
		return 0, fmt.Errorf("%q is not a size such as 512MiB or 10GiB", v)
	}
	return n * mult, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
