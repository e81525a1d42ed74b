package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The standard OpenTelemetry variables Setup reads itself (from the
// service's environment, so flags and in-process services see the same);
// the others (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE,
// _COMPRESSION, OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES) the SDK reads from
// the process environment as usual.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvServiceName    = "OTEL_SERVICE_NAME"
	EnvSampler        = "OTEL_TRACES_SAMPLER"
	EnvSamplerArg     = "OTEL_TRACES_SAMPLER_ARG"
	EnvExporter       = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

// Environ is what a runner of services (fulfillctl up, the bench) passes
// on from its own environment to turn their tracing on: the set variables
// among endpoint, protocol, sampler and exporter. OTEL_SERVICE_NAME is
// not passed: each service names itself.
func Environ(getenv func(string) string) map[string]string {
	out := map[string]string{}
	for _, k := range []string{EnvEndpoint, EnvTracesEndpoint, EnvProtocol, EnvTracesProtocol, EnvSampler, EnvSamplerArg, EnvExporter, EnvSDKDisabled} {
		if v := getenv(k); v != "" {
			out[k] = v
		}
	}
	return out
}

// Setup turns tracing on for service binary when an OTLP endpoint is set
// (endpoint: OTEL_EXPORTER_OTLP_ENDPOINT or its flag; else
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT from getenv), and answers nil (off)
// otherwise, or when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none:
// then no exporter, no provider and no goroutine exists. Spans go out in
// batches over OTLP/HTTP protobuf, or gRPC with
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc; the service is named fulfill-<binary>
// unless OTEL_SERVICE_NAME says otherwise; the sampler is the standard
// OTEL_TRACES_SAMPLER's (default parentbased_always_on). An unusable value
// is an error naming the variable. Export failures are logged to log (the
// OpenTelemetry error handler is process-wide: the last Setup's wins).
func Setup(ctx context.Context, binary, endpoint string, getenv func(string) string, log zerolog.Logger) (*Tracer, error) {
	exp, err := exporter(ctx, endpoint, getenv)
	if exp == nil || err != nil {
		return nil, err
	}
	sampler, err := Sampler(getenv(EnvSampler), getenv(EnvSamplerArg))
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, err
	}
	name := getenv(EnvServiceName)
	if name == "" {
		name = "fulfill-" + binary
	}
	// OTEL_RESOURCE_ATTRIBUTES from the process environment first, the
	// service name over it.
	res, err := resource.Merge(resource.Environment(), resource.NewSchemaless(
		attribute.String("service.name", name), attribute.String("service.namespace", "fulfill")))
	if err != nil {
		res = resource.NewSchemaless(attribute.String("service.name", name))
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn().Err(err).Msg("tracing: exporting spans failed")
	}))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	return &Tracer{tracer: tp.Tracer(Scope), provider: tp}, nil
}

// Enabled reports whether Setup would turn tracing on, without making
// anything.
func Enabled(endpoint string, getenv func(string) string) bool {
	if endpoint == "" {
		endpoint = getenv(EnvTracesEndpoint)
	}
	disabled, _ := strconv.ParseBool(getenv(EnvSDKDisabled))
	return endpoint != "" && !disabled && strings.TrimSpace(getenv(EnvExporter)) != "none"
}

// exporter is the OTLP exporter the variables ask for, or nil for none.
func exporter(ctx context.Context, endpoint string, getenv func(string) string) (*otlptrace.Exporter, error) {
	if !Enabled(endpoint, getenv) {
		return nil, nil
	}
	if e := strings.TrimSpace(getenv(EnvExporter)); e != "" && e != "otlp" {
		return nil, fmt.Errorf("%s %q: want otlp or none", EnvExporter, e)
	}
	protocol := getenv(EnvTracesProtocol)
	if protocol == "" {
		protocol = getenv(EnvProtocol)
	}
	// A signal's own endpoint is used as it is; the general one is a base
	// URL, to which OTLP/HTTP adds the traces path.
	traces := getenv(EnvTracesEndpoint)
	if traces != "" {
		endpoint = ""
	}
	for _, v := range []struct{ name, value string }{{EnvEndpoint, endpoint}, {EnvTracesEndpoint, traces}} {
		if v.value == "" {
			continue
		}
		if u, err := url.Parse(v.value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s %q: not an http(s) URL such as http://otel-collector:4318", v.name, redact(v.value))
		}
	}
	switch protocol {
	case "", "http/protobuf":
		u := traces
		if u == "" {
			u = strings.TrimRight(endpoint, "/") + "/v1/traces"
		}
		return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u))
	case "grpc":
		u := traces
		if u == "" {
			u = endpoint
		}
		return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(u))
	}
	return nil, fmt.Errorf("%s %q: want http/protobuf or grpc", EnvProtocol, protocol)
}

// redact hides a URL's user info, for an error message.
func redact(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	if strings.Contains(v, "@") {
		return "(URL with credentials)"
	}
	return v
}

// Sampler is the sampler of the standard OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG values: always_on, always_off, traceidratio and
// their parentbased_ forms (the default, parentbased_always_on, follows the
// caller's decision and samples every new trace).
func Sampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("%s %q: want a fraction from 0 to 1", EnvSamplerArg, arg)
		}
		return r, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("%s %q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", EnvSampler, name)
}
