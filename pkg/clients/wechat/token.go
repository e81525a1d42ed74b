package wechat

import (
	"context"
	"errors"
)

// TokenSource provides access tokens to a Client.
type TokenSource interface {
	// Token returns a token believed valid.
	Token(ctx context.Context) (string, error)
	// Refresh is called after the platform rejected stale (errcode 40001, 40014 or
	// 42001) and returns a different token. Concurrent callers with the same stale
	// token share ONE refresh (single flight).
	Refresh(ctx context.Context, stale string) (string, error)
}

// errEmptyStaticToken is returned by a StaticToken source holding "".
var errEmptyStaticToken = errors.New("wechat: static access token is empty")

// staticToken is a TokenSource with one fixed token.
type staticToken string

// StaticToken returns a TokenSource that always gives tok (for example a
// third-party authorizer_access_token managed elsewhere). Its Refresh returns
// ErrStaticToken, so a rejected token ends the call with ClassToken.
func StaticToken(tok string) TokenSource { return staticToken(tok) }

// Token returns the fixed token.
func (s staticToken) Token(ctx context.Context) (string, error) {
	if s == "" {
		return "", errEmptyStaticToken
	}
	return string(s), nil
}

// Refresh returns ErrStaticToken.
func (s staticToken) Refresh(ctx context.Context, stale string) (string, error) {
	return "", ErrStaticToken
}
