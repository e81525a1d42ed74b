package reliability

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/ctl"
	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
)

// TestNATSCredentialsNeverLeak runs the pipeline against a NATS server that
// requires a token, then one that requires a user and password, each with
// LOG_LEVEL=debug, a child process, a NATS restart-free reconnect-free run
// and fulfillctl beside it (also with wrong credentials, so its connect
// error is printed), and searches every log line, returned error, /metrics
// and /readyz answer, stream message and fulfillctl output for the
// credentials. With token auth the user part of nats://TOKEN@host is the
// secret: url.Redacted alone printed it whole.
func TestNATSCredentialsNeverLeak(t *testing.T) {
	for _, auth := range []struct {
		name                  string
		token, user, password string
		secrets               []string
	}{
		{name: "token", token: "nats-tok-3f9a1c77e2", secrets: []string{"nats-tok-3f9a1c77e2"}},
		{name: "user and password", user: "fulfill-svc", password: "nats-pw-8c2e41d0", secrets: []string{"nats-pw-8c2e41d0"}},
	} {
		t.Run(auth.name, func(t *testing.T) {
			st := faulttest.StartStack(t, stack.Options{Sandbox: scenario(83, size(300, 100)),
				NATSToken: auth.token, NATSUser: auth.user, NATSPassword: auth.password,
				Env: fastEnv(map[string]string{"LOG_LEVEL": "debug"})})
			if !strings.Contains(st.NATSURL, auth.secrets[0]) {
				t.Fatalf("the test's NATS URL %q lacks the credential: the search would find nothing anyway", st.NATSURL)
			}
			logs := &faulttest.SyncBuffer{}
			p := startPipeline(t, st, logs, 1, nil)
			child, childAdmin := startChildReady(t, st, "shipper", t.TempDir(), nil)
			_, js := faulttest.Connect(t, st.NATSURL)
			want := st.Sandbox.Scenario()
			faulttest.WaitTerminal(t, js, want, 3*time.Minute, multiLogs{logs, childLogs{&[]*faulttest.Child{child}}})

			texts := map[string]string{}
			for name, addrs := range p.admins {
				for _, addr := range addrs {
					for _, path := range []string{"/metrics", "/readyz"} {
						_, body := httpGet(t, "http://"+addr+path)
						texts[name+" "+path] = body
					}
				}
			}
			for _, path := range []string{"/metrics", "/readyz"} {
				_, body := httpGet(t, "http://"+childAdmin+path)
				texts["child shipper "+path] = body
			}
			texts["fulfillctl status"] = fulfillctl(t, st, "status")
			texts["fulfillctl dlq list"] = fulfillctl(t, st, "dlq", "list")
			// Wrong credentials: the connect error is printed to the operator.
			wrong := strings.ReplaceAll(st.NATSURL, auth.secrets[0], auth.secrets[0]+"-wrong")
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := ctl.Run(ctx, []string{"fulfillctl", "status"}, ctl.Env{Getenv: func(k string) string {
				if k == "NATS_URL" {
					return wrong
				}
				return ""
			}, Stdout: &out, Stderr: &out})
			cancel()
			if err == nil {
				t.Fatal("fulfillctl status with wrong credentials succeeded")
			}
			texts["fulfillctl status with wrong credentials"] = out.String() + err.Error()
			// A service refused at start prints its error too.
			var refused bytes.Buffer
			serr := stack.Services["enricher"](context.Background(), []string{"enricher"}, st.Getenv(map[string]string{
				"NATS_URL": wrong, "ADMIN_ADDR": "127.0.0.1:0", "STREAM_MAX_AGE": "1m",
			}), &refused, &refused)
			texts["a refused service"] = refused.String() + fmt.Sprint(serr)

			if err := child.Term(); err != nil {
				t.Errorf("child shipper did not stop cleanly: %v", err)
			}
			texts["child shipper log"] = child.Logs()
			if err := p.stop(); err != nil {
				texts["errors returned"] = err.Error()
				t.Errorf("services did not stop cleanly: %v", err)
			}
			texts["in-process logs"] = logs.String()
			streams, _ := streamTexts(t, js)
			for k, v := range streams {
				texts[k] = v
			}
			if !strings.Contains(texts["in-process logs"], "REDACTED@") {
				t.Error("the start-up log shows no redacted NATS URL: the search is not looking where the URL is printed")
			}
			for where, text := range texts {
				for _, secret := range auth.secrets {
					if i := strings.Index(text, secret); i >= 0 {
						t.Errorf("the NATS credential is in %s: …%s…", where, text[max(0, i-120):min(len(text), i+len(secret)+40)])
					}
				}
			}
		})
	}
}
