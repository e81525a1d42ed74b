package push

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"testing"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// encryptRaw encrypts whole blocks with the official key, no padding added:
// for plaintexts broken on purpose.
func encryptRaw(t *testing.T, pt []byte) []byte {
	t.Helper()
	k, err := key(officialKey)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(k)
	out := bytes.Clone(pt)
	cipher.NewCBCEncrypter(block, k[:aes.BlockSize]).CryptBlocks(out, out)
	return out
}

// padded pads pt as Encrypt does.
func padded(pt []byte) []byte {
	pad := blockSize - len(pt)%blockSize
	return append(bytes.Clone(pt), bytes.Repeat([]byte{byte(pad)}, pad)...)
}
