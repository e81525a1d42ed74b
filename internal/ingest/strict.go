package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// checkKeys refuses what encoding/json accepts silently: the same key twice
// in one object (json keeps the last), and a key that names a field only
// when case is ignored ("ORDER_ID"). known maps an object's path (""
// for the body, "products[]" for each product line) to its field names;
// keys of no field at all are left to the decoder's unknown-field check.
// It returns the offending key with the error.
func checkKeys(body []byte, known map[string][]string) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		path   string
		seen   map[string]bool
		key    string // the key whose value comes next (objects)
	}
	var stack []*frame
	childPath := func() string {
		if len(stack) == 0 {
			return ""
		}
		top := stack[len(stack)-1]
		if !top.object {
			return top.path + "[]"
		}
		if top.path == "" {
			return top.key
		}
		return top.path + "." + top.key
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", nil // malformed: the decoder says so, with its position
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key == "" {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key, _ := tok.(string)
			if top.seen[key] {
				return key, fmt.Errorf("key %s appears twice", key)
			}
			top.seen[key] = true
			if fields, ok := known[top.path]; ok && !slices.Contains(fields, key) {
				for _, f := range fields {
					if strings.EqualFold(f, key) {
						return key, fmt.Errorf("key %s: keys are case-sensitive, want %s", key, f)
					}
				}
			}
			top.key = key
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{object: true, path: childPath(), seen: map[string]bool{}})
		case '[':
			stack = append(stack, &frame{path: childPath()})
		case '}', ']':
			stack = stack[:len(stack)-1]
		}
		if top != nil && top.object {
			top.key = "" // the value is read (or opened): the next token is a key
		}
	}
}
