package deploytest

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fulfill/pipeline/internal/config"
)

// networkPolicy is the part of a NetworkPolicy the tests read.
type networkPolicy struct {
	Spec struct {
		PodSelector labelSelector `yaml:"podSelector"`
		PolicyTypes []string      `yaml:"policyTypes"`
		Ingress     []struct {
			From  []policyPeer `yaml:"from"`
			Ports []policyPort `yaml:"ports"`
		} `yaml:"ingress"`
		Egress []struct {
			To    []policyPeer `yaml:"to"`
			Ports []policyPort `yaml:"ports"`
		} `yaml:"egress"`
	} `yaml:"spec"`
}

type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []any             `yaml:"matchExpressions"`
}

type policyPeer struct {
	NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
	PodSelector       *labelSelector `yaml:"podSelector"`
	IPBlock           *struct {
		CIDR   string   `yaml:"cidr"`
		Except []string `yaml:"except"`
	} `yaml:"ipBlock"`
}

type policyPort struct {
	Protocol string `yaml:"protocol"`
	Port     any    `yaml:"port"`
	EndPort  *int   `yaml:"endPort"`
}

// proto is the port's protocol, TCP when unset (the API's default).
func (p policyPort) proto() string {
	if p.Protocol == "" {
		return "TCP"
	}
	return p.Protocol
}

// namespaceLabel is the label the API server sets on every namespace to its
// name; the policies choose peer namespaces by it.
const namespaceLabel = "kubernetes.io/metadata.name"

// namespace is the namespace a peer names by namespaceLabel, "" if none.
func (p policyPeer) namespace() string {
	if p.NamespaceSelector == nil {
		return ""
	}
	return p.NamespaceSelector.MatchLabels[namespaceLabel]
}

// Namespaces the base's policies admit traffic from (deploy/README.md,
// "Network policies").
const (
	ingressControllerNS = "ingress-nginx"
	monitoringNS        = "monitoring"
)

// TestNetworkPolicies checks that every Deployment's pods are selected by
// exactly one NetworkPolicy of their own, which isolates them both ways:
// ingress only on the ports the stage serves, from the namespaces that
// call them (ingest's API from the ingress controller, every admin port
// from monitoring), and egress only to NATS on 4222 in the namespace of
// NATS_URL, to DNS on 53 over UDP and TCP, and to public addresses on 443.
func TestNetworkPolicies(t *testing.T) {
	b := loadBase(t)
	pols := b.all("NetworkPolicy")
	if len(pols) == 0 {
		t.Fatal("the base has no NetworkPolicy")
	}
	// ingressFrom: each port a stage serves (by the variable holding its
	// address) and the one namespace allowed to reach it.
	cases := []struct {
		binary      string
		ingressFrom map[string]string
	}{
		{config.Ingest, map[string]string{"INGEST_HTTP_ADDR": ingressControllerNS, "ADMIN_ADDR": monitoringNS}},
		{config.Enricher, map[string]string{"ADMIN_ADDR": monitoringNS}},
		{config.Shipper, map[string]string{"ADMIN_ADDR": monitoringNS}},
	}
	ws := map[string]workload{}
	for _, w := range workloads(t, b) {
		ws[w.binary] = w
	}
	for _, tc := range cases {
		t.Run(tc.binary, func(t *testing.T) {
			w, ok := ws[tc.binary]
			if !ok {
				t.Fatalf("no Deployment runs %s", tc.binary)
			}
			var own []networkPolicy
			var names []string
			for _, o := range pols {
				p := as[networkPolicy](t, o)
				if len(p.Spec.PodSelector.MatchExpressions) > 0 {
					t.Fatalf("%s: matchExpressions in podSelector; the test reads matchLabels only", o)
				}
				if len(p.Spec.PodSelector.MatchLabels) == 0 {
					continue // a namespace-wide policy (a default deny) is not a stage's own
				}
				if subset(p.Spec.PodSelector.MatchLabels, w.dep.Spec.Template.Metadata.Labels) {
					own = append(own, p)
					names = append(names, o.Metadata.Name)
				}
			}
			if len(own) != 1 {
				t.Fatalf("%d NetworkPolicies select its pods (%v), want exactly 1", len(own), names)
			}
			p := own[0]
			for _, other := range ws {
				if other.binary != w.binary && subset(p.Spec.PodSelector.MatchLabels, other.dep.Spec.Template.Metadata.Labels) {
					t.Errorf("its policy %s also selects %s's pods", names[0], other.binary)
				}
			}
			if !slices.Contains(p.Spec.PolicyTypes, "Ingress") || !slices.Contains(p.Spec.PolicyTypes, "Egress") {
				t.Errorf("policyTypes %v, want Ingress and Egress: isolated both ways", p.Spec.PolicyTypes)
			}
			for _, problem := range append(ingressProblems(w, p, tc.ingressFrom), egressProblems(w, p)...) {
				t.Error(problem)
			}
		})
	}
}

// TestNetworkPolicyChecksCatch feeds the checks of TestNetworkPolicies
// ingest's own policy with one thing wrong at a time, and wants each
// caught: a check that passes everything would pass the base too.
func TestNetworkPolicyChecksCatch(t *testing.T) {
	b := loadBase(t)
	var ingest workload
	for _, w := range workloads(t, b) {
		if w.binary == config.Ingest {
			ingest = w
		}
	}
	o, ok := b.find("NetworkPolicy", "ingest")
	if !ok {
		t.Fatal("no NetworkPolicy ingest")
	}
	want := map[string]string{"INGEST_HTTP_ADDR": ingressControllerNS, "ADMIN_ADDR": monitoringNS}
	port := func(proto string, n int) policyPort { return policyPort{Protocol: proto, Port: n} }
	// rule returns the index of the egress rule allowing n/proto.
	rule := func(p *networkPolicy, proto string, n int) int {
		for i, r := range p.Spec.Egress {
			for _, pp := range r.Ports {
				if pp.proto() == proto && pp.Port == n {
					return i
				}
			}
		}
		t.Fatalf("ingest's policy has no egress rule for %d/%s", n, proto)
		return -1
	}
	cases := []struct {
		name   string
		mutate func(p *networkPolicy)
		want   string // a problem containing this; "" for none
	}{
		{"as in the base", func(p *networkPolicy) {}, ""},
		{"plain HTTP to the platforms", func(p *networkPolicy) {
			i := rule(p, "TCP", 443)
			p.Spec.Egress[i].Ports = append(p.Spec.Egress[i].Ports, port("TCP", 80))
		}, "allows 80/TCP"},
		{"an egress rule for every port", func(p *networkPolicy) { p.Spec.Egress[rule(p, "TCP", 4222)].Ports = nil }, "has no ports"},
		{"NATS's port anywhere", func(p *networkPolicy) { p.Spec.Egress[rule(p, "TCP", 4222)].To = nil }, "has no to"},
		{"NATS in another namespace", func(p *networkPolicy) {
			p.Spec.Egress[rule(p, "TCP", 4222)].To[0].NamespaceSelector = &labelSelector{MatchLabels: map[string]string{namespaceLabel: "messaging"}}
		}, "want NATS's pods"},
		{"DNS over UDP only", func(p *networkPolicy) {
			i := rule(p, "UDP", 53)
			p.Spec.Egress[i].Ports = slices.DeleteFunc(p.Spec.Egress[i].Ports, func(pp policyPort) bool { return pp.proto() == "TCP" })
		}, "no egress to 53/TCP"},
		{"HTTPS into the cluster", func(p *networkPolicy) {
			for _, peer := range p.Spec.Egress[rule(p, "TCP", 443)].To {
				peer.IPBlock.Except = nil
			}
		}, "does not leave out 10.0.0.0/8"},
		{"HTTPS to a namespace", func(p *networkPolicy) {
			i := rule(p, "TCP", 443)
			p.Spec.Egress[i].To = append(p.Spec.Egress[i].To, policyPeer{NamespaceSelector: &labelSelector{}})
		}, "want address blocks only"},
		{"the API open to all", func(p *networkPolicy) { p.Spec.Ingress[0].From = nil }, "has no from"},
		{"scrapes from the ingress controller", func(p *networkPolicy) {
			for i := range p.Spec.Ingress {
				for j := range p.Spec.Ingress[i].From {
					p.Spec.Ingress[i].From[j].NamespaceSelector = &labelSelector{MatchLabels: map[string]string{namespaceLabel: ingressControllerNS}}
				}
			}
		}, `admitted from "ingress-nginx", want namespace "monitoring"`},
		{"a port the stage does not serve", func(p *networkPolicy) {
			p.Spec.Ingress[0].Ports = append(p.Spec.Ingress[0].Ports, port("TCP", 9999))
		}, "port 9999 is admitted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := as[networkPolicy](t, o) // a fresh copy each time
			tc.mutate(&p)
			problems := append(ingressProblems(ingest, p, want), egressProblems(ingest, p)...)
			if tc.want == "" {
				if len(problems) > 0 {
					t.Fatalf("problems with the base's own policy: %v", problems)
				}
				return
			}
			if !slices.ContainsFunc(problems, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Errorf("no problem mentions %q; got %q", tc.want, problems)
			}
		})
	}
}

// ingressProblems lists how the policy differs from admitting exactly the
// ports of want (the address variables of w), each from its namespace alone.
func ingressProblems(w workload, p networkPolicy, want map[string]string) []string {
	var out []string
	errorf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	wantFrom := map[string]string{} // container port → namespace
	for v, ns := range want {
		_, port, err := net.SplitHostPort(w.env[v])
		if err != nil {
			errorf("%s %q: %v", v, w.env[v], err)
			continue
		}
		wantFrom[port] = ns
	}
	got := map[string]string{}
	for i, r := range p.Spec.Ingress {
		if len(r.From) == 0 {
			errorf("ingress rule %d has no from: it admits every source", i)
		}
		if len(r.Ports) == 0 {
			errorf("ingress rule %d has no ports: it admits every port", i)
		}
		for _, pp := range r.Ports {
			port := resolvePort(w.c, pp.Port)
			if pp.proto() != "TCP" || pp.EndPort != nil {
				errorf("ingress rule %d: port %v/%s (endPort %v), want single TCP ports", i, pp.Port, pp.proto(), pp.EndPort)
			}
			for _, peer := range r.From {
				ns := peer.namespace()
				if ns == "" || peer.IPBlock != nil || len(peer.NamespaceSelector.MatchLabels) != 1 {
					errorf("ingress rule %d: a peer %+v not chosen by %s alone", i, peer, namespaceLabel)
					continue
				}
				if prev, dup := got[port]; dup && prev != ns {
					errorf("port %s admitted from %s and %s", port, prev, ns)
				}
				got[port] = ns
			}
		}
	}
	for port, ns := range wantFrom {
		if got[port] != ns {
			errorf("port %s: admitted from %q, want namespace %q", port, got[port], ns)
		}
	}
	for port, ns := range got {
		if _, ok := wantFrom[port]; !ok {
			errorf("port %s is admitted (from %s) but the stage serves nothing there", port, ns)
		}
	}
	return out
}

// egressPort is a destination port and its protocol.
type egressPort struct {
	proto string
	port  int
}

func (e egressPort) String() string { return fmt.Sprintf("%d/%s", e.port, e.proto) }

// egressProblems lists how the policy's egress differs from NATS, DNS and
// HTTPS and nowhere else: every rule has ports and peers, and every port is
// one of those.
func egressProblems(w workload, p networkPolicy) []string {
	var out []string
	errorf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	natsNS, err := natsNamespace(w.env["NATS_URL"])
	if err != nil {
		errorf("%v", err)
	}
	nats, dnsUDP, dnsTCP, https := egressPort{"TCP", 4222}, egressPort{"UDP", 53}, egressPort{"TCP", 53}, egressPort{"TCP", 443}
	seen := map[egressPort]bool{}
	for i, r := range p.Spec.Egress {
		if len(r.Ports) == 0 {
			errorf("egress rule %d has no ports: it allows every port", i)
		}
		if len(r.To) == 0 {
			errorf("egress rule %d has no to: it allows every destination", i)
		}
		for _, pp := range r.Ports {
			n, ok := pp.Port.(int)
			if !ok || pp.EndPort != nil {
				errorf("egress rule %d: port %v (endPort %v), want a single port number", i, pp.Port, pp.EndPort)
				continue
			}
			ep := egressPort{pp.proto(), n}
			seen[ep] = true
			switch ep {
			case nats:
				for _, peer := range r.To {
					if peer.namespace() != natsNS || peer.PodSelector == nil || len(peer.PodSelector.MatchLabels) == 0 {
						errorf("egress to %s: peer %+v, want NATS's pods in namespace %q (NATS_URL)", ep, peer, natsNS)
					}
				}
			case dnsUDP, dnsTCP:
				for _, peer := range r.To {
					if peer.namespace() == "" || peer.PodSelector == nil || len(peer.PodSelector.MatchLabels) == 0 {
						errorf("egress to %s: peer %+v, want the DNS pods of one namespace", ep, peer)
					}
				}
			case https:
				out = append(out, publicOnlyProblems(ep, r.To)...)
			default:
				errorf("egress rule %d allows %s: only NATS (4222/TCP), DNS (53/UDP, 53/TCP) and HTTPS (443/TCP)", i, ep)
			}
		}
	}
	for _, ep := range []egressPort{nats, dnsUDP, dnsTCP, https} {
		if !seen[ep] {
			errorf("no egress to %s", ep)
		}
	}
	return out
}

// publicOnlyProblems lists HTTPS peers that are not address blocks leaving
// out the private and link-local ranges, so the rule reaches the platforms
// and not the cluster.
func publicOnlyProblems(ep egressPort, peers []policyPeer) []string {
	var out []string
	mustExcept := map[string][]string{
		"0.0.0.0/0": {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"},
		"::/0":      {"fc00::/7", "fe80::/10"},
	}
	for _, peer := range peers {
		if peer.IPBlock == nil || peer.NamespaceSelector != nil || peer.PodSelector != nil {
			out = append(out, fmt.Sprintf("egress to %s: peer %+v, want address blocks only", ep, peer))
			continue
		}
		want, ok := mustExcept[peer.IPBlock.CIDR]
		if !ok {
			continue // a narrower block (a platform's own range) is fine
		}
		for _, e := range want {
			if !slices.Contains(peer.IPBlock.Except, e) {
				out = append(out, fmt.Sprintf("egress to %s: ipBlock %s does not leave out %s", ep, peer.IPBlock.CIDR, e))
			}
		}
	}
	return out
}

// natsNamespace is the namespace of the cluster-local service NATS_URL
// names (<service>.<namespace>.svc...).
func natsNamespace(natsURL string) (string, error) {
	first, _, _ := strings.Cut(natsURL, ",")
	u, err := url.Parse(first)
	if err != nil {
		return "", fmt.Errorf("NATS_URL %q: %w", natsURL, err)
	}
	parts := strings.Split(u.Hostname(), ".")
	if len(parts) < 3 || parts[2] != "svc" {
		return "", fmt.Errorf("NATS_URL %q is not a cluster service name <service>.<namespace>.svc...", natsURL)
	}
	return parts[1], nil
}
