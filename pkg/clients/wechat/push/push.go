package push

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
)

// MaxBody bounds a push's body; WeChat's order messages are a few hundred
// bytes.
const MaxBody = 64 << 10

// The errors of Open and VerifyURL (wrapped, with context that never holds
// a secret).
var (
	// ErrBadSignature: msg_signature (or, for the URL check, signature)
	// is missing or is not the shop's.
	ErrBadSignature = errors.New("push: signature does not match")
	// ErrNotEncrypted: the body has no Encrypt (a plaintext push), or the
	// query says another encryption than aes.
	ErrNotEncrypted = errors.New("push: body is not encrypted")
	// ErrBadCiphertext: Encrypt does not decrypt with the shop's keys.
	ErrBadCiphertext = errors.New("push: ciphertext does not decrypt")
	// ErrWrongAppID: the message decrypted, but for another appid.
	ErrWrongAppID = errors.New("push: message is for another appid")
	// ErrTooLarge: the body is larger than MaxBody.
	ErrTooLarge = errors.New("push: body too large")
	// ErrMalformed: the body or the message is not the JSON expected.
	ErrMalformed = errors.New("push: malformed")
	// ErrBadKey: the shop's EncodingAESKey is not 43 characters of base64.
	ErrBadKey = errors.New("push: EncodingAESKey invalid")
)

// blockSize is the padding block of WeChat's encryption (PKCS#7 to 32
// bytes, not AES's 16).
const blockSize = 32

// Keys are one shop's push settings, from its 消息推送 page.
type Keys struct {
	Token string
	// AESKey is the EncodingAESKey (43 characters); PreviousAESKey the one
	// being rotated out, still accepted.
	AESKey, PreviousAESKey string
	// AppID is the shop's appid, which every message must carry.
	AppID string
}

// Query is the query string of a push or URL check.
type Query struct {
	Signature, Timestamp, Nonce, OpenID, EncryptType, MsgSignature, Echostr string
}

// ParseQuery reads a push's query string.
func ParseQuery(v url.Values) Query {
	return Query{Signature: v.Get("signature"), Timestamp: v.Get("timestamp"), Nonce: v.Get("nonce"), OpenID: v.Get("openid"),
		EncryptType: v.Get("encrypt_type"), MsgSignature: v.Get("msg_signature"), Echostr: v.Get("echostr")}
}

// Sign is WeChat's signature: hex sha1 of the parts sorted and
// concatenated.
func Sign(parts ...string) string {
	s := slices.Clone(parts)
	slices.Sort(s)
	sum := sha1.Sum([]byte(strings.Join(s, "")))
	return hex.EncodeToString(sum[:])
}

// same compares a signature received with the one expected, in constant
// time.
func same(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(strings.ToLower(got)), []byte(want)) == 1
}

// VerifyURL answers the check WeChat makes when the 消息推送 page is saved:
// what to write back (echostr) when the signature is the shop's. In
// security mode an echostr signed by msg_signature is decrypted first.
func (k Keys) VerifyURL(q Query) (string, error) {
	if q.Echostr == "" {
		return "", fmt.Errorf("%w: no echostr", ErrMalformed)
	}
	if q.MsgSignature != "" {
		if !same(q.MsgSignature, Sign(k.Token, q.Timestamp, q.Nonce, q.Echostr)) {
			return "", fmt.Errorf("%w: msg_signature of the URL check", ErrBadSignature)
		}
		msg, err := k.decrypt(q.Echostr)
		if err != nil {
			return "", err
		}
		return string(msg), nil
	}
	if !same(q.Signature, Sign(k.Token, q.Timestamp, q.Nonce)) {
		return "", fmt.Errorf("%w: signature of the URL check", ErrBadSignature)
	}
	return q.Echostr, nil
}

// envelope is a push's body.
type envelope struct {
	ToUserName string `json:"ToUserName"`
	Encrypt    string `json:"Encrypt"`
}

// Open verifies a push (msg_signature over its Encrypt), decrypts it with
// the current key and then the previous one, checks its appid and parses
// the message.
func (k Keys) Open(q Query, body []byte) (*Message, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(body), MaxBody)
	}
	if q.EncryptType != "" && q.EncryptType != "aes" {
		return nil, fmt.Errorf("%w: encrypt_type %q", ErrNotEncrypted, limit(q.EncryptType))
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: body is not a JSON object with Encrypt", ErrMalformed)
	}
	if env.Encrypt == "" {
		return nil, fmt.Errorf("%w: no Encrypt in the body (security mode is required)", ErrNotEncrypted)
	}
	if q.MsgSignature == "" {
		return nil, fmt.Errorf("%w: no msg_signature (the plain signature does not cover the body)", ErrBadSignature)
	}
	if !same(q.MsgSignature, Sign(k.Token, q.Timestamp, q.Nonce, env.Encrypt)) {
		return nil, fmt.Errorf("%w: msg_signature", ErrBadSignature)
	}
	plain, err := k.decrypt(env.Encrypt)
	if err != nil {
		return nil, err
	}
	return ParseMessage(plain)
}

// decrypt opens ciphertext with the current key, then the previous one.
func (k Keys) decrypt(ciphertext string) ([]byte, error) {
	msg, err := Decrypt(k.AESKey, ciphertext, k.AppID)
	if err != nil && k.PreviousAESKey != "" && !errors.Is(err, ErrMalformed) {
		if prev, perr := Decrypt(k.PreviousAESKey, ciphertext, k.AppID); perr == nil {
			return prev, nil
		}
	}
	return msg, err
}

// key decodes an EncodingAESKey.
func key(encodingAESKey string) ([]byte, error) {
	if len(encodingAESKey) != 43 {
		return nil, fmt.Errorf("%w: %d characters, want 43", ErrBadKey, len(encodingAESKey))
	}
	k, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("%w: not base64", ErrBadKey)
	}
	return k, nil
}

// Decrypt opens one Encrypt value: the message it carries, when it
// decrypts with encodingAESKey and names appID.
func Decrypt(encodingAESKey, ciphertext, appID string) ([]byte, error) {
	k, err := key(encodingAESKey)
	if err != nil {
		return nil, err
	}
	ct, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrBadCiphertext)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes, not whole AES blocks", ErrBadCiphertext, len(ct))
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, k[:aes.BlockSize]).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > blockSize || pad > len(pt) {
		return nil, fmt.Errorf("%w: bad padding", ErrBadCiphertext)
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrBadCiphertext)
		}
	}
	pt = pt[:len(pt)-pad]
	if len(pt) < 20 {
		return nil, fmt.Errorf("%w: too short", ErrBadCiphertext)
	}
	n := binary.BigEndian.Uint32(pt[16:20])
	if uint64(n) > uint64(len(pt)-20) {
		return nil, fmt.Errorf("%w: message length %d beyond the plaintext", ErrBadCiphertext, n)
	}
	msg, app := pt[20:20+n], pt[20+n:]
	if string(app) != appID {
		return nil, fmt.Errorf("%w: want %s", ErrWrongAppID, appID)
	}
	return msg, nil
}

// Encrypt is WeChat's encryption of msg for appID: random supplies the 16
// leading bytes.
func Encrypt(encodingAESKey string, msg []byte, appID string, random io.Reader) (string, error) {
	k, err := key(encodingAESKey)
	if err != nil {
		return "", err
	}
	pt := make([]byte, 20, 20+len(msg)+len(appID)+blockSize)
	if _, err := io.ReadFull(random, pt[:16]); err != nil {
		return "", fmt.Errorf("push: random bytes: %w", err)
	}
	binary.BigEndian.PutUint32(pt[16:20], uint32(len(msg)))
	pt = append(append(pt, msg...), appID...)
	pad := blockSize - len(pt)%blockSize
	pt = append(pt, bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, err := aes.NewCipher(k)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	cipher.NewCBCEncrypter(block, k[:aes.BlockSize]).CryptBlocks(pt, pt)
	return base64.StdEncoding.EncodeToString(pt), nil
}

// Seal encrypts and signs msg as WeChat does: the query and the body of
// the POST to the shop's callback URL.
func (k Keys) Seal(msg []byte, timestamp, nonce string, random io.Reader) (url.Values, []byte, error) {
	enc, err := Encrypt(k.AESKey, msg, k.AppID, random)
	if err != nil {
		return nil, nil, err
	}
	var to struct{ ToUserName string }
	_ = json.Unmarshal(msg, &to)
	body, err := json.Marshal(envelope{ToUserName: to.ToUserName, Encrypt: enc})
	if err != nil {
		return nil, nil, err
	}
	q := url.Values{}
	q.Set("signature", Sign(k.Token, timestamp, nonce))
	q.Set("timestamp", timestamp)
	q.Set("nonce", nonce)
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", Sign(k.Token, timestamp, nonce, enc))
	return q, body, nil
}

// limit shortens a value quoted in an error.
func limit(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
