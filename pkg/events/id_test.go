package events

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestEventIDIsUUIDv5OfSubjectAndKey(t *testing.T) {
	long := strings.Repeat("k", 400) // past eventID's stack buffer
	tests := []struct {
		stage  Stage
		source Source
		shop   string
		id     string
		key    string
	}{
		{StageReceived, SourceChannels, "default", "3704612354559743232", ""},
		{StageShipped, SourceAPI, "acme", "A-1", "6f1c1f49-0f4e-5d1a-8d6e-8b8e4b8f0d2a"},
		{StageFailed, SourceVVTool, "shop-9_b", "T_9", "replay:run-1:6f1c1f49-0f4e-5d1a-8d6e-8b8e4b8f0d2a"},
		{StageEnriched, SourceChannels, strings.Repeat("s", MaxShopIDLen), strings.Repeat("z", MaxOrderIDLen), long},
	}
	for _, tt := range tests {
		subject, err := Subject(tt.stage, tt.source, tt.shop, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		name := subject
		if tt.key != "" {
			name += ":" + tt.key
		}
		// The ids of events already in streams were made by uuid.NewSHA1:
		// a re-published event must get the same id (Nats-Msg-Id).
		want := uuid.NewSHA1(namespace, []byte(name)).String()
		if got := eventID(tt.stage, tt.source, tt.shop, tt.id, tt.key); got != want {
			t.Errorf("eventID(%q) = %s, want %s", name, got, want)
		}
	}
	// One allocation: the id's string.
	if n := testing.AllocsPerRun(100, func() {
		_ = eventID(StageShipped, SourceChannels, "default", "3704612354559743232", "6f1c1f49-0f4e-5d1a-8d6e-8b8e4b8f0d2a")
	}); n > 1 {
		t.Errorf("eventID allocates %v times, want 1", n)
	}
}
