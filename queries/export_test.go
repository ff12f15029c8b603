package queries

// ProductsSQL is the statement (and its arguments) that reads one page of f, for the plan tests.
func ProductsSQL(f ProductFilter) (string, []any, error) {
	sql, args, _, _, err := productsSQL(f)
	return sql, args, err
}
