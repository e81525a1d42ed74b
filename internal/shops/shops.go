package shops

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fulfill/pipeline/pkg/events"
)

// DefaultID is the shop of a deployment configured by environment variables
// alone (no SHOPS_FILE).
const DefaultID = events.DefaultShop

// MaxShipConcurrency is the largest ship_concurrency a shop may ask for.
const MaxShipConcurrency = 4096

// aesKeyLen is the length of a WeChat EncodingAESKey: 32 bytes as unpadded
// base64.
const aesKeyLen = 43

// ValidID reports whether id is a valid shop id (events.ValidateShopID): one
// subject token.
func ValidID(id string) bool { return events.ValidateShopID(id) == nil }

// Shop is one shop of the deployment. A Shop reached through a Registry is
// shared and must not be modified.
type Shop struct {
	ID              string
	Channels        *Channels // nil: the shop has no WeChat Channels account
	VVTool          *VVTool   // nil: no vv-tool account
	APIToken        string    // "": the shop has no API token of its own (the global INGEST_API_TOKEN may still post for it)
	ShipConcurrency int       // 0: the deployment's default (SHIP_SHOP_CONCURRENCY)
}

// Channels is a shop's WeChat Channels account.
type Channels struct {
	AppID       string
	Secret      string // exactly one of Secret and AccessToken is set
	AccessToken string // a fixed (third-party authorizer) token
	DeliveryID  string // carrier id given to polled orders, e.g. SF; required
	// PushToken and PushAESKey (the EncodingAESKey, 43 characters) verify and
	// decrypt message pushes; both or neither. PushAESKeyPrevious is the key
	// being rotated out, still accepted.
	PushToken, PushAESKey, PushAESKeyPrevious string
}

// VVTool is a shop's vv-tool account.
type VVTool struct {
	Token   string
	ShopIDs []string // vv-tool's shop ids, at least one
}

// Registry is the set of shops of a deployment. It is immutable once built:
// a reload builds a new one.
type Registry struct {
	shops []*Shop // sorted by ID
	byID  map[string]*Shop
}

// Shops returns the shops sorted by ID. The slice is the caller's; the shops
// are shared and must not be modified.
func (r *Registry) Shops() []*Shop { return slices.Clone(r.shops) }

// Shop returns the shop with the id.
func (r *Registry) Shop(id string) (*Shop, bool) {
	s, ok := r.byID[id]
	return s, ok
}

// IDs returns the shop ids, sorted.
func (r *Registry) IDs() []string {
	ids := make([]string, len(r.shops))
	for i, s := range r.shops {
		ids[i] = s.ID
	}
	return ids
}

// Len is the number of shops; 0 for a nil registry.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	return len(r.shops)
}

// Equal reports whether r and o hold the same shops with the same settings
// and secrets. A nil registry equals only a nil one.
func (r *Registry) Equal(o *Registry) bool {
	if r == nil || o == nil {
		return r == o
	}
	return reflect.DeepEqual(r.shops, o.shops)
}

// Diff compares two registries by shop id: the ids only in next (added), only
// in prev (removed), and in both with any setting or secret changed, each
// sorted. A nil registry has no shops.
func Diff(prev, next *Registry) (added, removed, changed []string) {
	var a, b []*Shop
	if prev != nil {
		a = prev.shops
	}
	if next != nil {
		b = next.shops
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].ID < b[j].ID):
			removed = append(removed, a[i].ID)
			i++
		case i == len(a) || b[j].ID < a[i].ID:
			added = append(added, b[j].ID)
			j++
		default:
			if !reflect.DeepEqual(a[i], b[j]) {
				changed = append(changed, a[i].ID)
			}
			i++
			j++
		}
	}
	return added, removed, changed
}

// Single is the registry of one shop built from the environment-variable
// configuration. An empty s.ID is DefaultID. It validates like Parse, except
// what the environment configuration has never required, so that existing
// setups keep working: an appid is needed with a fixed access token only when
// pushes are configured; DeliveryID may be empty (only the ingest's Channels
// poller needs it, and the configuration checks that itself); and the shop
// may have neither Channels nor VVTool (an ingest that only takes orders over
// HTTP has no platform credentials). Where the environment sets both an app
// secret and a fixed token, the token is the one in use: pass only that.
func Single(s Shop) (*Registry, error) {
	c := cloneShop(&s)
	if c.ID == "" {
		c.ID = DefaultID
	}
	shops := []*Shop{c}
	if p := validate(shops, true, nil); p != nil {
		e := &Error{Field: p.field, Shop: c.ID, Msg: p.msg}
		if !ValidID(c.ID) {
			e.Shop = "" // the error is about the id itself, which it quotes
		}
		return nil, e
	}
	return newRegistry(shops), nil
}

func cloneShop(s *Shop) *Shop {
	c := *s
	if s.Channels != nil {
		ch := *s.Channels
		c.Channels = &ch
	}
	if s.VVTool != nil {
		vv := *s.VVTool
		vv.ShopIDs = slices.Clone(vv.ShopIDs)
		c.VVTool = &vv
	}
	return &c
}

func newRegistry(shops []*Shop) *Registry {
	r := &Registry{shops: slices.Clone(shops), byID: make(map[string]*Shop, len(shops))}
	slices.SortFunc(r.shops, func(a, b *Shop) int { return strings.Compare(a.ID, b.ID) })
	for _, s := range r.shops {
		r.byID[s.ID] = s
	}
	return r
}

// problem is a validation failure of shops[shop]; field is the logical field
// ("channels.appid", "vvtool.shop_ids[2]"), msg never holds a secret.
type problem struct {
	shop       int
	field, msg string
}

// validate checks the rules that hold whatever the shops came from; env
// relaxes what the environment configuration never required (see Single).
// where(i, field) tells the place of another shop's field in an error about
// a duplicate ("" without a file).
func validate(shops []*Shop, env bool, where func(shop int, field string) string) *problem {
	if where == nil {
		where = func(int, string) string { return "" }
	}
	if len(shops) == 0 {
		return &problem{shop: -1, field: "shops", msg: "lists no shops: at least one is required"}
	}
	ids := make(map[string]int, len(shops))
	appids := make(map[string]int, len(shops))
	tokens := make(map[[32]byte]int) // by the token's hash, to refuse one token in two shops
	for i, s := range shops {
		if p := validateShop(s, env); p != nil {
			p.shop = i
			return p
		}
		if j, dup := ids[s.ID]; dup {
			return &problem{i, "id", fmt.Sprintf("shop id %s is listed twice (also shops[%d]%s)", s.ID, j, where(j, "id"))}
		}
		ids[s.ID] = i
		if s.Channels != nil && s.Channels.AppID != "" {
			if j, dup := appids[s.Channels.AppID]; dup {
				return &problem{i, "channels.appid", fmt.Sprintf("appid %s is also shop %s's%s: one appid is one Channels account "+
					"with one access token (cached and refreshed once per appid), so two shops on it would be one account polled twice; "+
					"list it once", s.Channels.AppID, shops[j].ID, where(j, "channels.appid"))}
			}
			appids[s.Channels.AppID] = i
		}
		if s.APIToken != "" {
			h := sha256.Sum256([]byte(s.APIToken))
			if j, dup := tokens[h]; dup {
				return &problem{i, "api_token", fmt.Sprintf("is the same token as shop %s's%s: a shop's API token "+
					"says which shop may post, so each must be its own", shops[j].ID, where(j, "api_token"))}
			}
			tokens[h] = i
		}
	}
	return nil
}

func validateShop(s *Shop, env bool) *problem {
	if s.ID == "" {
		return &problem{field: "id", msg: "is required"}
	}
	if !ValidID(s.ID) {
		return &problem{field: "id", msg: fmt.Sprintf("%q is not a shop id: use 1 to 32 of a-z, 0-9, _ and -, "+
			"starting with a letter or a digit", s.ID)}
	}
	if s.Channels == nil && s.VVTool == nil && !env {
		return &problem{field: "", msg: "has neither channels nor vvtool: a shop needs at least one platform account"}
	}
	if c := s.Channels; c != nil {
		if p := validateChannels(c, env); p != nil {
			return p
		}
	}
	if v := s.VVTool; v != nil {
		if v.Token == "" {
			return &problem{field: "vvtool.token", msg: "is required: give token_env or token_file"}
		}
		if len(v.ShopIDs) == 0 {
			return &problem{field: "vvtool.shop_ids", msg: "is required: at least one vv-tool shop id, e.g. [s1, s2]"}
		}
		seen := make(map[string]bool, len(v.ShopIDs))
		for k, id := range v.ShopIDs {
			f := fmt.Sprintf("vvtool.shop_ids[%d]", k)
			if !oneWord(id) {
				return &problem{field: f, msg: "must be a vv-tool shop id, one word"}
			}
			if seen[id] {
				return &problem{field: f, msg: fmt.Sprintf("%s is listed twice", id)}
			}
			seen[id] = true
		}
	}
	if s.ShipConcurrency < 0 || s.ShipConcurrency > MaxShipConcurrency {
		return &problem{field: "ship_concurrency", msg: fmt.Sprintf("must be from 1 to %d", MaxShipConcurrency)}
	}
	return nil
}

func validateChannels(c *Channels, env bool) *problem {
	switch {
	case c.Secret != "" && c.AccessToken != "":
		return &problem{field: "channels.access_token", msg: "give either the app secret (secret_env/secret_file) " +
			"or a fixed authorizer token (access_token_env/access_token_file), not both"}
	case c.Secret == "" && c.AccessToken == "":
		return &problem{field: "channels", msg: "needs the app secret (secret_env or secret_file) " +
			"or a fixed authorizer token (access_token_env or access_token_file)"}
	}
	needAppID := !env || c.Secret != "" || c.PushAESKey != ""
	if c.AppID == "" && needAppID {
		return &problem{field: "channels.appid", msg: "is required"}
	}
	if c.AppID != "" && !oneWord(c.AppID) {
		return &problem{field: "channels.appid", msg: "must be one word, e.g. wx1234567890abcdef"}
	}
	if c.DeliveryID == "" && !env {
		return &problem{field: "channels.delivery_id", msg: "is required: the carrier id given to polled orders, e.g. SF"}
	}
	if c.DeliveryID != "" && !oneWord(c.DeliveryID) {
		return &problem{field: "channels.delivery_id", msg: "must be one word, a carrier id such as SF"}
	}
	switch {
	case c.PushToken != "" && c.PushAESKey == "":
		return &problem{field: "channels.push_token", msg: "goes with push_aes_key: a push is verified with the token and decrypted with the key"}
	case c.PushAESKey != "" && c.PushToken == "":
		return &problem{field: "channels.push_aes_key", msg: "goes with push_token: a push is verified with the token and decrypted with the key"}
	case c.PushAESKeyPrevious != "" && c.PushAESKey == "":
		return &problem{field: "channels.push_aes_key_previous", msg: "goes with push_aes_key: it is the key being rotated out"}
	}
	for _, k := range []struct{ field, v string }{
		{"channels.push_aes_key", c.PushAESKey},
		{"channels.push_aes_key_previous", c.PushAESKeyPrevious},
	} {
		if k.v == "" || validAESKey(k.v) {
			continue
		}
		why := fmt.Sprintf("the value has %d", utf8.RuneCountInString(k.v))
		if utf8.RuneCountInString(k.v) == aesKeyLen {
			why = "the value is not base64"
		}
		return &problem{field: k.field, msg: fmt.Sprintf("must be a WeChat EncodingAESKey, %d base64 characters (%s)", aesKeyLen, why)}
	}
	return nil
}

// validAESKey reports whether k is a WeChat EncodingAESKey: 43 base64
// characters that are 32 bytes once "=" is added.
func validAESKey(k string) bool {
	if len(k) != aesKeyLen {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(k + "=")
	return err == nil && len(b) == 32
}

// oneWord reports whether s is non-empty and has no white space or control
// characters.
func oneWord(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
	})
}
