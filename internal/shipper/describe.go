package shipper

import (
	"fmt"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
)

// describe names what the platform answered: its errcode and what it means,
// or, for an answer without an errcode (an HTTP error page), the error.
func describe(code int, err error) string {
	if code != 0 || err == nil {
		return fmt.Sprintf("errcode %d: %s", code, wechat.Hint(code))
	}
	return err.Error()
}
