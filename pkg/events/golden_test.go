package events_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/events"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current encoder")

// goldenChain is one envelope per stage, built with fixed inputs. The golden
// files pin the wire format downstream teams read, including the event ids:
// a changed id means a changed namespace or Nats-Msg-Id scheme, which breaks
// de-duplication against events already in the stream.
func goldenChain(t *testing.T) map[events.Stage]*events.Envelope {
	t.Helper()
	at := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	const id = "3704612354559743232"
	products := []events.Product{
		{ProductID: "10000029981234", SkuID: "1380291234", ProductCnt: 2},
		{ProductID: "10000029985678", SkuID: "1380295678", ProductCnt: 1},
	}
	rcv := mustNew(t, events.StageReceived, events.SourceChannels, id, events.Received{
		DeliveryID: "SF", Products: products, OrderStatus: 20, UpdateTime: 1741944413,
	}, nil, "", at)
	enr := mustNew(t, events.StageEnriched, events.SourceChannels, id, events.Enriched{
		DeliveryID: "SF", WaybillID: "SF1234567890123",
		WaybillData: []events.WaybillField{{Key: "receiver_name", Value: "张三"}, {Key: "sort_code", Value: "755W-A01"}},
		PrintHTML:   "<html><body>SF1234567890123</body></html>", OrderStatus: 0, Products: products,
		ReceivedAt: rcv.OccurredAt,
	}, rcv, "", at.Add(2*time.Second))
	shp := mustNew(t, events.StageShipped, events.SourceChannels, id, events.Shipped{
		DeliveryID: "SF", WaybillID: "SF1234567890123", Attempts: 2, AlreadyShipped: true,
	}, enr, "", at.Add(5*time.Second))
	fld := mustNew(t, events.StageFailed, events.SourceAPI, "A-1001", events.Failed{
		Stage: "shipper", Errcode: 109000, Errmsg: "order status not allow send", Attempts: 1,
		Reason: "the platform refuses to ship this order in its current status; check it in the merchant console",
	}, nil, "", at.Add(7*time.Second))
	lgs := mustNew(t, events.StageLogistics, events.SourceVVTool, "T202503140001", events.Logistics{
		ShopID: "shop-9", Tid: "T202503140001", OrderCode: "OC1", Status: "WAIT_BUYER_CONFIRM_GOODS",
		CompanyName: "顺丰速运", OutSid: "SF1234567890123", ItemTitle: "T-shirt",
		SubTids: []string{"T202503140001-1"}, Created: at.Add(-time.Hour), Modified: at,
	}, nil, "", at)
	psh := mustNew(t, events.StagePush, events.SourceChannels, id, events.Push{
		Event: "channels_ec_order_pay", CreateTime: at.Unix(),
		Message: json.RawMessage(`{"ToUserName":"gh_0123456789ab","FromUserName":"o0A1b2C3d4E5f6G7h8I9j0","CreateTime":` +
			strconv.FormatInt(at.Unix(), 10) + `,"MsgType":"event","Event":"channels_ec_order_pay","order_info":{"order_id":3704612354559743232,"pay_time":` +
			strconv.FormatInt(at.Unix(), 10) + `}}`),
	}, nil, "channels_ec_order_pay:"+strconv.FormatInt(at.Unix(), 10), at)
	return map[events.Stage]*events.Envelope{
		events.StageReceived: rcv, events.StageEnriched: enr, events.StageShipped: shp,
		events.StageFailed: fld, events.StageLogistics: lgs, events.StagePush: psh,
	}
}

func TestGolden(t *testing.T) {
	chain := goldenChain(t)
	for _, stage := range events.Stages {
		t.Run(string(stage), func(t *testing.T) {
			e := chain[stage]
			got, err := e.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", string(stage)+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update once to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded %s envelope differs from %s:\n got %s\nwant %s", stage, path, got, want)
			}
			// The golden file is a valid message of its stage, whose payload
			// decodes into the stage's type.
			d, err := events.Decode(want)
			if err != nil {
				t.Fatalf("Decode(%s): %v", path, err)
			}
			if d.Stage() != stage || d.Subject() != e.Subject() || d.ID != e.ID {
				t.Fatalf("decoded golden %s: stage %q subject %q id %q", path, d.Stage(), d.Subject(), d.ID)
			}
			var payload any
			switch stage {
			case events.StageReceived:
				payload = &events.Received{}
			case events.StageEnriched:
				payload = &events.Enriched{}
			case events.StageShipped:
				payload = &events.Shipped{}
			case events.StageFailed:
				payload = &events.Failed{}
			case events.StageLogistics:
				payload = &events.Logistics{}
			case events.StagePush:
				payload = &events.Push{}
			}
			if err := d.DecodeData(payload); err != nil {
				t.Fatalf("DecodeData(%T): %v", payload, err)
			}
		})
	}
}
