// Package push verifies, decrypts and encrypts the messages WeChat pushes to
// a shop's callback URL (the 消息推送 page of a WeChat Channels shop, in
// security mode, JSON format): the order events channels_ec_order_pay,
// _cancel, _deliver and the others.
//
// It trusts a push only when msg_signature, the one signature that covers
// the encrypted body, matches (compared in constant time); it refuses
// bodies that are not encrypted, bounds the body, checks every length and
// the padding so that no input can make it panic, and compares the
// decrypted appid with the shop's. Errors never carry the token, the key
// or the plaintext.
//
// The algorithm is WeChat's message encryption (消息加解密): key =
// base64(EncodingAESKey + "="), AES-256-CBC with IV = key[:16], PKCS#7
// padding to 32-byte blocks, plaintext = 16 random bytes, the message
// length as 4 bytes big-endian, the message, the appid; msg_signature =
// sha1 of the sorted, concatenated token, timestamp, nonce and Encrypt.
package push
