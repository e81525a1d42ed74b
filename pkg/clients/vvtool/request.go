package vvtool

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"strconv"
	"strings"
	"time"
)

// DefaultFields are the Shipping members requested when DetailRequest.Fields is
// empty. "receiver_location" is what makes the platform return Location.
var DefaultFields = []string{"tid", "order_code", "seller_nick", "buyer_nick", "item_title", "receiver_location", "status", "type", "company_name", "created", "modified", "is_quick_cod_order", "sub_tids", "is_split", "receiver_name", "receiver_phone", "receiver_mobile", "out_sid"}

// DefaultPageSize is the platform's page size when page_size is not sent; DetailAll
// sends it explicitly when DetailRequest.PageSize is 0.
const DefaultPageSize = 40

// DetailRequest is one query of /tool/erps/detail. Zero members are not sent.
type DetailRequest struct {
	// ShopID is the vv-tool shop id (required).
	ShopID string
	// Fields are the Shipping members to return; nil or empty means DefaultFields.
	// They are sent comma-joined, exactly as given.
	Fields []string
	// Tid asks for the one shipping of this trade id (other filters are then moot).
	Tid string
	// Status filters on Shipping.Status (CREATED, CLOSED…).
	Status string
	// StartCreated and EndCreated bound Shipping.Created; they are sent in
	// Asia/Shanghai whatever their location.
	StartCreated, EndCreated time.Time
	// PageNo (from 1) and PageSize; 0 leaves the platform default (1 and 40).
	PageNo, PageSize int
}

// formField is one multipart/form-data field.
type formField struct{ name, value string }

// form returns the fields of the request body, in a stable order, or an error
// wrapping ErrInvalidRequest.
func (r DetailRequest) form() ([]formField, error) {
	if strings.TrimSpace(r.ShopID) == "" {
		return nil, fmt.Errorf("%w: shop_id is required", ErrInvalidRequest)
	}
	if r.PageNo < 0 || r.PageSize < 0 {
		return nil, fmt.Errorf("%w: negative page_no %d or page_size %d", ErrInvalidRequest, r.PageNo, r.PageSize)
	}
	if !r.StartCreated.IsZero() && !r.EndCreated.IsZero() && r.EndCreated.Before(r.StartCreated) {
		return nil, fmt.Errorf("%w: end_created %s before start_created %s", ErrInvalidRequest,
			FormatTime(r.EndCreated), FormatTime(r.StartCreated))
	}
	fields := r.Fields
	if len(fields) == 0 {
		fields = DefaultFields
	}
	f := []formField{{"fields", strings.Join(fields, ",")}, {"shop_id", r.ShopID}}
	add := func(name, value string) {
		if value != "" {
			f = append(f, formField{name, value})
		}
	}
	add("tid", r.Tid)
	add("status", r.Status)
	if !r.StartCreated.IsZero() {
		add("start_created", FormatTime(r.StartCreated))
	}
	if !r.EndCreated.IsZero() {
		add("end_created", FormatTime(r.EndCreated))
	}
	if r.PageNo > 0 {
		add("page_no", strconv.Itoa(r.PageNo))
	}
	if r.PageSize > 0 {
		add("page_size", strconv.Itoa(r.PageSize))
	}
	return f, nil
}

// encode returns the multipart/form-data body of the request and its
// Content-Type (with the boundary).
func (r DetailRequest) encode() (body []byte, contentType string, err error) {
	fields, err := r.form()
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f.name, f.value); err != nil {
			return nil, "", fmt.Errorf("vvtool: encode form: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("vvtool: encode form: %w", err)
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}
