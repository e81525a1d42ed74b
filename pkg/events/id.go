package events

import (
	"crypto/sha1"

	"github.com/google/uuid"
)

// namespace seeds the name-based UUIDs of event ids.
var namespace = uuid.MustParse("5b0e7d8c-8f7a-4d51-9a43-1d0c5e2f6a10")

// eventID is the id of the event of stage from source for the shop's
// order made for key: the name-based (SHA-1, version 5) UUID in namespace
// of its subject, or of subject:key, as uuid.NewSHA1 makes it. Every
// service makes one or two per order, and uuid.NewSHA1 allocates the name,
// the hash and its sum each time; here only the id's string is allocated.
func eventID(stage Stage, source Source, shop, orderID, key string) string {
	var buf [256]byte
	b := append(buf[:0], namespace[:]...)
	b = appendSubject(b, stage, source, shop, orderID)
	if key != "" {
		b = append(b, ':')
		b = append(b, key...)
	}
	sum := sha1.Sum(b)
	var u uuid.UUID
	copy(u[:], sum[:len(u)])
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return u.String()
}

// appendSubject appends the subject of an event of stage from source for
// the shop's order to b.
func appendSubject(b []byte, stage Stage, source Source, shop, orderID string) []byte {
	b = append(b, "orders."...)
	b = append(b, stage...)
	b = append(b, '.')
	b = append(b, source...)
	b = append(b, '.')
	b = append(b, shop...)
	b = append(b, '.')
	return append(b, orderID...)
}
