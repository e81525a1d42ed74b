package shipper

import (
	"fmt"
	"strings"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
)

// actions says what the shipper does with an answer of each class: the
// right-hand column of the errcode table in the README and --help.
var actions = []struct {
	class  wechat.Class
	name   string
	extra  string // answers without an errcode that fall in the class
	action string
}{
	{wechat.ClassTransient, "transient", "HTTP 5xx and 429, timeouts, undecodable answers",
		"retry with exponential backoff and jitter inside SHIP_MAX_ELAPSED, keeping the message in progress; then failed"},
	{wechat.ClassToken, "token", "",
		"the client refreshes the token once (single flight) and replays once; refused again, backed off like transient"},
	{wechat.ClassAlreadyDone, "already done", "",
		"shipped, with already_shipped: true (an earlier call went through)"},
	{wechat.ClassWait, "waiting", "",
		"redelivered after SHIP_WAIT_DELAY, up to SHIP_WAIT_MAX_ATTEMPTS, then failed"},
	{wechat.ClassPermanent, "permanent", "every other errcode, other HTTP 4xx",
		"order.failed after one call, with a reason saying what to fix"},
}

// ErrcodeTable is the table of what the shipper does with each errcode,
// generated from the platform client's classification (wechat.Errcodes):
// Markdown for the README, plain text for --help.
func ErrcodeTable(markdown bool) string {
	byClass := map[wechat.Class][]string{}
	for _, e := range wechat.Errcodes() {
		byClass[e.Class] = append(byClass[e.Class], fmt.Sprintf("%d (%s)", e.Code, e.Hint))
	}
	var b strings.Builder
	if markdown {
		b.WriteString("| class | codes | what the shipper does |\n|---|---|---|\n")
	} else {
		b.WriteString("What the shipper does with each delivery/send answer:\n")
	}
	for _, a := range actions {
		codes := byClass[a.class]
		if a.extra != "" {
			codes = append(codes, a.extra)
		}
		if markdown {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", a.name, strings.Join(codes, ", "), a.action)
			continue
		}
		fmt.Fprintf(&b, "\n  %s: %s\n    codes: %s\n", a.name, a.action, strings.Join(codes, ", "))
	}
	return b.String()
}
