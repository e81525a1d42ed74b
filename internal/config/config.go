package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fulfill/pipeline/pkg/events"
)

// ErrHelp is returned by Parse after printing --help; the caller exits 0.
var ErrHelp = flag.ErrHelp

// Config is the parsed environment of one binary.
type Config struct {
	Binary string

	NATSURL        string
	NATSCreds      string
	StreamReplicas int
	StreamMaxAge   time.Duration
	StreamMaxBytes int64
	StreamUpdate   bool
	AdminAddr      string
	AdminPprof     bool
	LogLevel       string
	LogFormat      string
	// OTLPEndpoint turns tracing on (OTEL_EXPORTER_OTLP_ENDPOINT).
	OTLPEndpoint string

	ShopsFile           string
	ShopsReloadInterval time.Duration

	WeChatAPIBase     string
	WeChatAppID       string
	WeChatAppSecret   string
	WeChatAccessToken string

	WeChatPushToken          string
	WeChatPushAESKey         string
	WeChatPushAESKeyPrevious string

	IngestSources      []string
	IngestPollInterval time.Duration
	IngestLookback     time.Duration
	IngestDeliveryID   string
	IngestHTTPAddr     string
	IngestAPIToken     string

	VVToolAPIBase string
	VVToolToken   string
	VVToolShopIDs []string

	EnrichBatchSize int
	EnrichMaxWait   time.Duration
	EnrichAckWait   time.Duration

	ShipConcurrency     int
	ShipShopConcurrency int
	ShipBackoffInitial  time.Duration
	ShipBackoffMax      time.Duration
	ShipMaxElapsed      time.Duration
	ShipWaitDelay       time.Duration
	ShipWaitMaxAttempts int
	ShipAckWait         time.Duration
	ShipHeartbeat       time.Duration

	raw map[string]string // resolved values by variable name, for Redacted
}

// StreamLimits are the ORDERS stream settings of the configuration.
func (c *Config) StreamLimits() events.StreamLimits {
	return events.StreamLimits{Replicas: c.StreamReplicas, MaxAge: c.StreamMaxAge, MaxBytes: c.StreamMaxBytes}
}

// HasSource reports whether the ingest poller s ("channels", "vvtool") is on.
func (c *Config) HasSource(s string) bool { return slices.Contains(c.IngestSources, s) }

// Parse reads binary's variables from getenv, lets flags in args[1:]
// override them, and checks them. Errors name the variable and fit on one
// line. With -h or --help it prints the table to help and returns ErrHelp.
func Parse(binary, summary string, args []string, getenv func(string) string, help io.Writer) (*Config, error) {
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vars := VarsFor(binary)
	flags := make(map[string]*string, len(vars))
	for _, v := range vars {
		flags[v.Name] = fs.String(v.Flag(), "", v.Usage)
	}
	var argv []string
	if len(args) > 1 {
		argv = args[1:]
	}
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			PrintHelp(help, binary, summary)
			return nil, ErrHelp
		}
		return nil, fmt.Errorf("%w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	c := &Config{Binary: binary, raw: map[string]string{}}
	for _, v := range vars {
		val, origin := v.DefaultFor(binary), "default"
		if e := getenv(v.Name); e != "" {
			val, origin = e, "environment"
		}
		if set[v.Flag()] {
			val, origin = *flags[v.Name], "flag --"+v.Flag()
		}
		if v.Name == "INGEST_SOURCES" && val == "none" {
			val = ""
		}
		c.raw[v.Name] = val
		if err := v.set(c, val); err != nil {
			return nil, fmt.Errorf("%s (from %s): %w", v.Name, origin, err)
		}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// shopVars are the variables that define the one shop of a deployment
// without SHOPS_FILE.
var shopVars = []string{"WECHAT_APPID", "WECHAT_APPSECRET", "WECHAT_ACCESS_TOKEN", "INGEST_DELIVERY_ID", "VVTOOL_TOKEN", "VVTOOL_SHOP_IDS",
	"WECHAT_PUSH_TOKEN", "WECHAT_PUSH_AES_KEY", "WECHAT_PUSH_AES_KEY_PREVIOUS"}

// check validates combinations the single-variable parsers cannot see.
func (c *Config) check() error {
	if err := c.checkShop(); err != nil {
		return err
	}
	if c.Binary == Shipper && c.ShipBackoffInitial > c.ShipBackoffMax {
		return fmt.Errorf("SHIP_BACKOFF_INITIAL %s is longer than SHIP_BACKOFF_MAX %s", c.ShipBackoffInitial, c.ShipBackoffMax)
	}
	if c.Binary == Shipper && 3*c.ShipHeartbeat > c.ShipAckWait {
		// The order's lease lives SHIP_ACK_WAIT - SHIP_HEARTBEAT and is
		// renewed every heartbeat: it needs room for a late renewal.
		return fmt.Errorf("SHIP_HEARTBEAT %s must be at most a third of SHIP_ACK_WAIT %s", c.ShipHeartbeat, c.ShipAckWait)
	}
	return nil
}

// checkShop checks the variables of the one shop of a deployment without
// SHOPS_FILE; with the file, it refuses them (they would be silently
// ignored), and the file is checked when it is read.
func (c *Config) checkShop() error {
	if c.ShopsFile != "" {
		for _, name := range shopVars {
			if c.raw[name] != "" {
				return fmt.Errorf("%s is set with SHOPS_FILE: every shop's accounts are in the shops file; unset %s", name, name)
			}
		}
		return nil
	}
	needWeChat := c.Binary == Enricher || c.Binary == Shipper || (c.Binary == Ingest && c.HasSource("channels"))
	if needWeChat && c.WeChatAccessToken == "" && (c.WeChatAppID == "" || c.WeChatAppSecret == "") {
		return errors.New("WECHAT_APPID and WECHAT_APPSECRET (or WECHAT_ACCESS_TOKEN) are required")
	}
	if c.Binary == Ingest {
		if c.HasSource("channels") && c.IngestDeliveryID == "" {
			return errors.New("INGEST_DELIVERY_ID is required when INGEST_SOURCES includes channels (the carrier id, e.g. SF)")
		}
		if c.HasSource("vvtool") && (c.VVToolToken == "" || len(c.VVToolShopIDs) == 0) {
			return errors.New("VVTOOL_TOKEN and VVTOOL_SHOP_IDS are required when INGEST_SOURCES includes vvtool")
		}
		if len(c.IngestSources) == 0 && c.IngestAPIToken == "" && c.WeChatPushToken == "" {
			return errors.New("nothing to ingest: INGEST_SOURCES is empty and INGEST_API_TOKEN is unset")
		}
	}
	return nil
}

// VarsFor lists the variables binary reads, in table order.
func VarsFor(binary string) []Var {
	var out []Var
	for _, v := range Vars {
		if v.Used(binary) {
			out = append(out, v)
		}
	}
	return out
}

// Lookup finds a variable of the table by name.
func Lookup(name string) (Var, bool) {
	for _, v := range Vars {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}

// PrintHelp writes the usage of binary: every variable, its flag and default.
func PrintHelp(w io.Writer, binary, summary string) {
	fmt.Fprintf(w, "%s — %s\n\nUsage: %s [flags]\n\nEvery setting is an environment variable; the flag beside it overrides it.\n\n", binary, summary, binary)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tFLAG\tDEFAULT\tMEANING")
	for _, v := range VarsFor(binary) {
		def := v.DefaultFor(binary)
		if def == "" {
			def = "(unset)"
		}
		usage := v.Usage
		if v.Secret {
			usage += " [secret: never logged]"
		}
		fmt.Fprintf(tw, "%s\t--%s\t%s\t%s\n", v.Name, v.Flag(), def, usage)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nEndpoints on ADMIN_ADDR: /healthz, /readyz, /metrics. SIGTERM drains in-flight work and exits 0.")
}

// Redacted is a one-line description of the configuration for the start-up
// log, with secrets replaced by "set" or "unset".
func (c *Config) Redacted() map[string]string {
	out := map[string]string{}
	for _, v := range VarsFor(c.Binary) {
		val := c.raw[v.Name]
		if v.Secret {
			if val == "" {
				val = "unset"
			} else {
				val = "set"
			}
		}
		out[v.Name] = RedactURLs(val)
	}
	return out
}

// RedactURLs hides the whole user info of every URL in a comma-separated
// list, for logs and error messages: with token auth
// (nats://TOKEN@host) the user part is the secret, and with user:password
// or an nkey-style user the name is no business of a log either.
func RedactURLs(v string) string {
	if !strings.Contains(v, "@") {
		return v
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		switch {
		case err != nil:
			parts[i] = "(unparsable URL)"
		case u.User != nil:
			u.User = url.User("REDACTED")
			parts[i] = u.String()
		case strings.Contains(p, "@"): // an @ url.Parse did not take as user info
			parts[i] = "(URL with credentials)"
		}
	}
	return strings.Join(parts, ",")
}
