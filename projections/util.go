package projections

import (
	"encoding/json"
	"errors"

	"github.com/techvault/techvault/domain"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func isNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }
