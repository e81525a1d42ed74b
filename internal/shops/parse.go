package shops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size limits of what Load and a Watcher read: a shops file of thousands of
// shops is well under a megabyte, a secret under a kilobyte; the limits keep
// a wrong path (a log file, /dev/zero) from eating the process's memory.
const (
	MaxFileSize   = 16 << 20 // bytes of a shops file
	MaxSecretSize = 64 << 10 // bytes of a secret file
)

// Error is why a shops file, or the shop given to Single, was refused. Its
// text is one line and never holds a secret's value.
type Error struct {
	Line, Column int    // 1-based place in the shops file; 0 when not known or not from a file
	Field        string // the field's path, e.g. shops[1].channels.secret_env
	Shop         string // the shop's id, when it is known
	Msg          string // what is wrong
	file         bool   // about a shops file (not Single's shop)
}

// Error is the refusal in one line: where (line and column), the field and
// its shop, and what is wrong.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Line > 0:
		fmt.Fprintf(&b, "shops file line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
	case e.file:
		b.WriteString("shops file")
	default:
		b.WriteString("shops")
	}
	b.WriteString(": ")
	switch {
	case e.Field != "":
		b.WriteString(e.Field)
		if e.Shop != "" {
			fmt.Fprintf(&b, " (shop %s)", e.Shop)
		}
		b.WriteString(": ")
	case e.Shop != "":
		fmt.Fprintf(&b, "shop %s: ", e.Shop)
	}
	b.WriteString(e.Msg)
	// One line whatever a message quoted (every quoting site escapes
	// already; this is the net under them).
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(b.String())
}

// Load reads the shops file at path. getenv resolves *_env references (nil:
// the process's environment); *_file references are read from the file
// system, a relative path from the shops file's folder.
func Load(path string, getenv func(string) string) (*Registry, error) {
	data, err := readRegular(path, MaxFileSize)
	if err != nil {
		return nil, &Error{file: true, Msg: "cannot read " + describeReadErr(path, err)}
	}
	return Parse(data, getenv, secretReader(filepath.Dir(path)))
}

// Parse reads a shops file. getenv and readFile resolve secret references
// (*_env, *_file); nil means the process's environment and file system (a
// relative path from the working directory).
// It refuses the file on its first problem with an *Error.
func Parse(data []byte, getenv func(string) string, readFile func(string) ([]byte, error)) (*Registry, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = secretReader(".")
	}
	p := &parser{getenv: getenv, readFile: readFile}
	shops, locs, err := p.file(data)
	if err != nil {
		return nil, err
	}
	where := func(j int, field string) string { return fmt.Sprintf(" at line %d", locs[j].at(field).line) }
	if pr := validate(shops, false, where); pr != nil {
		return nil, locs[pr.shop].err(pr, shops[pr.shop].ID)
	}
	return newRegistry(shops), nil
}

// readRegular reads the regular file at path, at most max bytes.
func readRegular(path string, max int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("not a regular file")}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %d bytes", max)}
	}
	return b, nil
}

// secretReader reads secret files, a relative path from dir.
func secretReader(dir string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return readRegular(p, MaxSecretSize)
	}
}

// describeReadErr is "<path>: <why>" for a failed read of the file the user
// named as path, with the resolved path when it differs.
func describeReadErr(path string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if pe.Path != path && pe.Path != "" {
			return fmt.Sprintf("%q (%s): %v", path, pe.Path, pe.Err)
		}
		return fmt.Sprintf("%q: %v", path, pe.Err)
	}
	return fmt.Sprintf("%q: %v", path, err)
}

// loc is where a field of a shop is: its path in the file and position.
type loc struct {
	field     string
	line, col int
}

// locs maps a shop's logical fields ("channels.secret", whichever of
// secret_env and secret_file was given) to where they are; "" is the shop.
type locs map[string]loc

// at is the place of the logical field: where it is given, or for a missing
// one its nearest given parent, named with the missing field.
func (l locs) at(field string) loc {
	if x, ok := l[field]; ok {
		return x
	}
	for parent := field; parent != ""; {
		if i := strings.LastIndexByte(parent, '.'); i >= 0 {
			parent = parent[:i]
		} else {
			parent = ""
		}
		if x, ok := l[parent]; ok {
			return loc{field: l[""].field + "." + field, line: x.line, col: x.col}
		}
	}
	return l[""]
}

func (l locs) err(p *problem, shop string) *Error {
	if !ValidID(shop) {
		shop = "" // the error is about the id itself, which it quotes
	}
	at := l.at(p.field)
	return &Error{Line: at.line, Column: at.col, Field: at.field, Shop: shop, Msg: p.msg, file: true}
}

// errAt is a refusal at node n.
func errAt(n *yaml.Node, field, shop, format string, args ...any) *Error {
	return &Error{Line: n.Line, Column: n.Column, Field: field, Shop: shop, Msg: fmt.Sprintf(format, args...), file: true}
}

// yamlError turns the YAML parser's "yaml: line N: problem" into an Error.
// The parser's problems are fixed texts, never the document's content.
func yamlError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{file: true}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				e.Line, msg = line, after
			}
		}
	}
	e.Msg = "not valid YAML: " + msg
	return e
}

// The keys of each mapping. A secret is given by <name>_env or <name>_file.
var (
	shopSecrets     = []string{"api_token"}
	channelsSecrets = []string{"secret", "access_token", "push_token", "push_aes_key", "push_aes_key_previous"}
	vvtoolSecrets   = []string{"token"}

	topKeys      = []string{"shops"}
	shopKeys     = append([]string{"id", "channels", "vvtool", "ship_concurrency"}, refKeys(shopSecrets)...)
	channelsKeys = append([]string{"appid", "delivery_id"}, refKeys(channelsSecrets)...)
	vvtoolKeys   = append([]string{"shop_ids"}, refKeys(vvtoolSecrets)...)
)

func refKeys(secrets []string) []string {
	var keys []string
	for _, s := range secrets {
		keys = append(keys, s+"_env", s+"_file")
	}
	return keys
}

// envName is what a *_env value must look like. It is stricter than POSIX
// on purpose: a secret pasted where its variable's name belongs (hex, base64,
// mixed case) is refused without being repeated in the error.
var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// simpleKey is a key printed as it is in a field path; others are quoted.
var simpleKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

type parser struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
}

// entry is one key and its value in a mapping.
type entry struct{ key, val *yaml.Node }

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if !simpleKey.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// file walks the document: the shops in file order, each with where its
// fields are. Each shop is validated as soon as it is read, so the first
// problem in the file is the one reported.
func (p *parser) file(data []byte) ([]*Shop, []locs, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, &Error{file: true, Msg: "the file is empty: list the shops under shops:"}
		}
		return nil, nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, yamlError(err)
		}
		at := &extra
		if len(extra.Content) > 0 {
			at = extra.Content[0]
		}
		return nil, nil, errAt(at, "", "", "a second YAML document: the file holds one")
	}
	if len(doc.Content) == 0 {
		return nil, nil, &Error{file: true, Msg: "the file is empty: list the shops under shops:"}
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, nil, errAt(root, "", "", "the file must be a mapping with the key shops")
	}
	f, err := fields(root, "", "", topKeys, nil)
	if err != nil {
		return nil, nil, err
	}
	e, ok := f["shops"]
	if !ok {
		return nil, nil, errAt(root, "shops", "", "is required: the list of shops")
	}
	seq := deref(e.val)
	if isNull(seq) || (seq.Kind == yaml.SequenceNode && len(seq.Content) == 0) {
		return nil, nil, errAt(e.key, "shops", "", "lists no shops: at least one is required")
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, nil, errAt(seq, "shops", "", "must be a list of shops")
	}
	shops := make([]*Shop, 0, len(seq.Content))
	all := make([]locs, 0, len(seq.Content))
	for i, n := range seq.Content {
		s, l, err := p.shop(n, i)
		if err != nil {
			return nil, nil, err
		}
		if pr := validateShop(s, false); pr != nil {
			return nil, nil, l.err(pr, s.ID)
		}
		shops = append(shops, s)
		all = append(all, l)
	}
	return shops, all, nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// fields reads a mapping's keys: each a string, given once, known, and not
// an inline secret.
func fields(n *yaml.Node, path, shop string, known, secrets []string) (map[string]entry, error) {
	m := make(map[string]entry, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, errAt(k, path, shop, "a key must be a string")
		}
		if prev, dup := m[k.Value]; dup {
			return nil, errAt(k, join(path, k.Value), shop, "is given twice (also at line %d)", prev.key.Line)
		}
		if slices.Contains(secrets, k.Value) {
			return nil, errAt(k, join(path, k.Value), shop, "inline secrets are not allowed: use %s_env or %s_file", k.Value, k.Value)
		}
		if !slices.Contains(known, k.Value) {
			hint := ""
			if k.Value == "<<" {
				hint = "YAML merge keys are not supported; "
			}
			return nil, errAt(k, join(path, k.Value), shop, "unknown key (%sknown here: %s)", hint, strings.Join(known, ", "))
		}
		m[k.Value] = entry{k, v}
	}
	return m, nil
}

// peekID is the shop's id if it has a valid one, for errors about fields
// before it.
func peekID(n *yaml.Node) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := deref(n.Content[i]), deref(n.Content[i+1]); k.Kind == yaml.ScalarNode && k.Value == "id" &&
			v.Kind == yaml.ScalarNode && ValidID(v.Value) {
			return v.Value
		}
	}
	return ""
}

// str is a scalar's text as written; null is "".
func str(n *yaml.Node, field, shop string) (string, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		return "", errAt(n, field, shop, "must be a string")
	}
	switch n.Tag {
	case "!!null":
		return "", nil
	case "!!str", "!!int", "!!float", "!!bool":
		return n.Value, nil
	}
	return "", errAt(n, field, shop, "must be a string, not %q", n.Tag)
}

func (p *parser) shop(n *yaml.Node, i int) (*Shop, locs, error) {
	path := fmt.Sprintf("shops[%d]", i)
	n = deref(n)
	l := locs{"": {path, n.Line, n.Column}}
	if n.Kind != yaml.MappingNode {
		return nil, nil, errAt(n, path, "", "must be a mapping: id and channels or vvtool")
	}
	id := peekID(n)
	f, err := fields(n, path, id, shopKeys, shopSecrets)
	if err != nil {
		return nil, nil, err
	}
	s := &Shop{}
	if e, ok := f["id"]; ok {
		l["id"] = loc{path + ".id", e.val.Line, e.val.Column}
		if s.ID, err = str(e.val, path+".id", id); err != nil {
			return nil, nil, err
		}
	}
	if e, ok := f["channels"]; ok {
		l["channels"] = loc{path + ".channels", e.key.Line, e.key.Column}
		if s.Channels, err = p.channels(e, path+".channels", id, l); err != nil {
			return nil, nil, err
		}
	}
	if e, ok := f["vvtool"]; ok {
		l["vvtool"] = loc{path + ".vvtool", e.key.Line, e.key.Column}
		if s.VVTool, err = p.vvtool(e, path+".vvtool", id, l); err != nil {
			return nil, nil, err
		}
	}
	if s.APIToken, err = p.ref(f, "api_token", path, "", id, l); err != nil {
		return nil, nil, err
	}
	if e, ok := f["ship_concurrency"]; ok {
		field := path + ".ship_concurrency"
		l["ship_concurrency"] = loc{field, e.val.Line, e.val.Column}
		v := deref(e.val)
		bad := errAt(v, field, id, "must be a whole number from 1 to %d (calls to the platform at once for this shop; "+
			"leave it out for SHIP_SHOP_CONCURRENCY)", MaxShipConcurrency)
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" {
			return nil, nil, bad
		}
		var c int64
		if v.Decode(&c) != nil || c < 1 || c > MaxShipConcurrency {
			return nil, nil, bad
		}
		s.ShipConcurrency = int(c)
	}
	return s, l, nil
}

// section reads the mapping of a section (channels, vvtool) of a shop; one
// given but empty is refused, what says what it should hold.
func section(e entry, path, shop, what string, known, secrets []string) (map[string]entry, error) {
	v := deref(e.val)
	if isNull(v) {
		return nil, errAt(e.key, path, shop, "is empty: give %s, or leave the key out", what)
	}
	if v.Kind != yaml.MappingNode {
		return nil, errAt(v, path, shop, "must be a mapping: %s", what)
	}
	return fields(v, path, shop, known, secrets)
}

func (p *parser) channels(e entry, path, shop string, l locs) (*Channels, error) {
	f, err := section(e, path, shop, "appid, secret_env (or access_token_env) and delivery_id", channelsKeys, channelsSecrets)
	if err != nil {
		return nil, err
	}
	c := &Channels{}
	for _, k := range []struct {
		key string
		dst *string
	}{{"appid", &c.AppID}, {"delivery_id", &c.DeliveryID}} {
		if e, ok := f[k.key]; ok {
			l["channels."+k.key] = loc{path + "." + k.key, e.val.Line, e.val.Column}
			if *k.dst, err = str(e.val, path+"."+k.key, shop); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range []struct {
		name string
		dst  *string
	}{
		{"secret", &c.Secret}, {"access_token", &c.AccessToken}, {"push_token", &c.PushToken},
		{"push_aes_key", &c.PushAESKey}, {"push_aes_key_previous", &c.PushAESKeyPrevious},
	} {
		if *k.dst, err = p.ref(f, k.name, path, "channels.", shop, l); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (p *parser) vvtool(e entry, path, shop string, l locs) (*VVTool, error) {
	f, err := section(e, path, shop, "token_env and shop_ids", vvtoolKeys, vvtoolSecrets)
	if err != nil {
		return nil, err
	}
	v := &VVTool{}
	if v.Token, err = p.ref(f, "token", path, "vvtool.", shop, l); err != nil {
		return nil, err
	}
	if e, ok := f["shop_ids"]; ok {
		field := path + ".shop_ids"
		l["vvtool.shop_ids"] = loc{field, e.val.Line, e.val.Column}
		seq := deref(e.val)
		if !isNull(seq) && seq.Kind != yaml.SequenceNode {
			return nil, errAt(seq, field, shop, "must be a list of vv-tool shop ids, e.g. [s1, s2]")
		}
		for k, item := range seq.Content { // null: no items, refused by validateShop
			f := fmt.Sprintf("%s[%d]", field, k)
			l[fmt.Sprintf("vvtool.shop_ids[%d]", k)] = loc{f, item.Line, item.Column}
			id, err := str(item, f, shop)
			if err != nil {
				return nil, err
			}
			v.ShopIDs = append(v.ShopIDs, id)
		}
	}
	return v, nil
}

// ref resolves the secret <name>_env or <name>_file of mapping f at path;
// "" when neither is given. The logical field is prefix+name. Errors name
// the variable or the file, never the value.
func (p *parser) ref(f map[string]entry, name, path, prefix, shop string, l locs) (string, error) {
	env, isEnv := f[name+"_env"]
	file, isFile := f[name+"_file"]
	switch {
	case isEnv && isFile:
		later := env
		if file.key.Line > env.key.Line || (file.key.Line == env.key.Line && file.key.Column > env.key.Column) {
			later = file
		}
		return "", errAt(later.key, join(path, later.key.Value), shop, "give %s_env or %s_file, not both", name, name)
	case !isEnv && !isFile:
		return "", nil
	}
	e := env
	if isFile {
		e = file
	}
	field := join(path, e.key.Value)
	l[prefix+name] = loc{field, e.val.Line, e.val.Column}
	ref, err := str(e.val, field, shop)
	if err != nil {
		return "", err
	}
	var v string
	if isEnv {
		switch {
		case ref == "":
			return "", errAt(e.val, field, shop, "is empty: name the environment variable that holds the secret")
		case !envName.MatchString(ref):
			return "", errAt(e.val, field, shop, "must name an environment variable (A-Z, 0-9 and _, not starting "+
				"with a digit); the value is not repeated here in case it is the secret itself")
		}
		v = strings.TrimSpace(p.getenv(ref))
		if v == "" {
			return "", errAt(e.val, field, shop, "%s is not set (or is empty)", ref)
		}
	} else {
		if ref == "" {
			return "", errAt(e.val, field, shop, "is empty: give the path of the file that holds the secret")
		}
		b, err := p.readFile(ref)
		if err != nil {
			return "", errAt(e.val, field, shop, "cannot read %s", describeReadErr(ref, err))
		}
		v = strings.TrimSpace(string(b))
		if v == "" {
			return "", errAt(e.val, field, shop, "%q is empty", ref)
		}
	}
	what := ref
	if isFile {
		what = strconv.Quote(ref)
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", errAt(e.val, field, shop, "%s holds more than one line: a secret is one line", what)
	}
	if !strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return v, nil
	}
	return "", errAt(e.val, field, shop, "%s holds control characters", what)
}
