package order

import (
	"fmt"
	"slices"
	"strings"

	"rmqtx/pkg/events"
)

// ValidationError lists what is wrong with a request, per field. Nothing was written or sent.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid order: " + strings.Join(parts, "; ")
}

// checkID adds to fields what is wrong with the ID v, if anything (events.CheckID is the rule both
// services share).
func checkID(fields map[string]string, name, v string) {
	if err := events.CheckID(v); err != nil {
		fields[name] = err.Error()
	}
}

// validate is what step 1 of Place refuses: a bad request, then a bad Idempotency-Key header (""
// is none).
func validate(req Request, idemKey string) error {
	if err := req.Validate(); err != nil {
		return err
	}
	if idemKey != "" {
		f := map[string]string{}
		checkID(f, "Idempotency-Key", idemKey)
		if len(f) > 0 {
			return &ValidationError{Fields: f}
		}
	}
	return nil
}

// Validate checks a request against the limits of the event contract, so that every order
// order-service accepts is one cart-service can apply.
func (r Request) Validate() error {
	f := map[string]string{}
	checkID(f, "user_id", r.UserID)
	switch {
	case len(r.Items) == 0:
		f["items"] = "must have at least one item"
	case len(r.Items) > events.MaxItems:
		f["items"] = fmt.Sprintf("must have at most %d items", events.MaxItems)
	}
	seen := map[string]int{}
	for i, it := range r.Items {
		p := fmt.Sprintf("items[%d].", i)
		checkID(f, p+"sku", it.SKU)
		if j, dup := seen[it.SKU]; dup && it.SKU != "" {
			f[p+"sku"] = fmt.Sprintf("duplicates items[%d].sku; order each SKU once", j)
		}
		seen[it.SKU] = i
		if it.Quantity < 1 || it.Quantity > events.MaxQuantity {
			f[p+"quantity"] = fmt.Sprintf("must be from 1 to %d", events.MaxQuantity)
		}
		if it.UnitPriceCents < 0 || it.UnitPriceCents > events.MaxPriceCents {
			f[p+"unit_price_cents"] = fmt.Sprintf("must be from 0 to %d", events.MaxPriceCents)
		}
	}
	if len(f) > 0 {
		return &ValidationError{Fields: f}
	}
	return nil
}
