package catalog

import "github.com/techvault/techvault/domain"

// Limits of the catalog's fields (the read tables' column sizes).
const (
	MaxCategoryName        = 50
	MaxCategoryDescription = 500
	MaxProductName         = 255
	MaxProductDescription  = 5000
	MaxStock               = 1_000_000_000
	Currency               = "USD"
)

// The catalog's text fields, checked by domain.CleanText (the store's one rule for text).
var (
	categoryName        = domain.TextRule{Field: "name", Required: true, MaxLen: MaxCategoryName}
	categoryDescription = domain.TextRule{Field: "description", MaxLen: MaxCategoryDescription, Multiline: true}
	productName         = domain.TextRule{Field: "name", Required: true, MaxLen: MaxProductName}
	productDescription  = domain.TextRule{Field: "description", MaxLen: MaxProductDescription, Multiline: true}
)

func checkPrice(p domain.Money) error {
	if p < 0 {
		return domain.Invalid("price", "price must not be negative")
	}
	if p > domain.MaxMoney {
		return domain.Invalid("price", "price must be at most %s", domain.MaxMoney)
	}
	return nil
}

func checkStock(field string, s int64) error {
	if s < 0 {
		return domain.Invalid(field, "stock must not go below zero")
	}
	if s > MaxStock {
		return domain.Invalid(field, "stock must be at most %d", MaxStock)
	}
	return nil
}
