package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/queries"
)

// Request and response bodies of the catalog.

type createCategoryRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

type updateCategoryRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

type categoryResponse struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Position    int64  `json:"position"`
}

type createProductRequest struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Price       json.RawMessage `json:"price"`
	CategoryID  *int64          `json:"category_id"`
	Stock       int64           `json:"stock"`
}

type updateProductRequest struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Price       json.RawMessage `json:"price"`
	// CategoryID: absent leaves it, null removes the product from its category.
	CategoryID json.RawMessage `json:"category_id"`
}

type stockRequest struct {
	Delta    *int64 `json:"delta"`
	Quantity *int64 `json:"quantity"`
}

type productResponse struct {
	ID          int64        `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Price       domain.Money `json:"price"`
	Currency    string       `json:"currency"`
	CategoryID  *int64       `json:"category_id"`
	Stock       int64        `json:"stock"`
	InStock     bool         `json:"in_stock"`
	Position    int64        `json:"position"`
}

type deletedResponse struct {
	ID       int64 `json:"id"`
	Deleted  bool  `json:"deleted"`
	Position int64 `json:"position"`
}

func toCategoryResponse(r commands.CategoryResult) categoryResponse {
	return categoryResponse{ID: r.ID, Name: r.Name, Description: r.Description, Position: r.Position}
}

func toProductResponse(r commands.ProductResult) productResponse {
	return productResponse{ID: r.ID, Name: r.Name, Description: r.Description, Price: r.Price, Currency: r.Currency,
		CategoryID: r.CategoryID, Stock: r.Stock, InStock: r.Stock > 0, Position: r.Position}
}

// Commands.

func (s *Server) createCategory(c *gin.Context) {
	var req createCategoryRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	res, err := s.cfg.Catalog.CreateCategory(c, metadata(c), commands.CreateCategory{Name: req.Name, Description: req.Description})
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("Location", fmt.Sprintf("/api/v1/categories/%d", res.ID))
	c.JSON(nethttp.StatusCreated, toCategoryResponse(res))
}

func (s *Server) updateCategory(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	var req updateCategoryRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Name == nil && req.Description == nil {
		writeError(c, domain.Invalid("", "nothing to update: give name and/or description"))
		return
	}
	res, err := s.cfg.Catalog.UpdateCategory(c, metadata(c), commands.UpdateCategory{ID: id, Name: req.Name, Description: req.Description})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toCategoryResponse(res))
}

// deleteBy answers a delete command: the id from the path, the position of the deletion event.
func deleteBy(del func(ctx context.Context, md domain.Metadata, id int64) (int64, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := pathID(c, "id")
		if err != nil {
			writeError(c, err)
			return
		}
		pos, err := del(c, metadata(c), id)
		if err != nil {
			writeError(c, err)
			return
		}
		c.JSON(nethttp.StatusOK, deletedResponse{ID: id, Deleted: true, Position: pos})
	}
}

func (s *Server) createProduct(c *gin.Context) {
	var req createProductRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Price == nil {
		writeError(c, domain.Invalid("price", "price is required"))
		return
	}
	price, err := optionalMoney("price", req.Price)
	if err != nil {
		writeError(c, err)
		return
	}
	if req.CategoryID != nil && (*req.CategoryID <= 0 || *req.CategoryID > maxID) {
		writeError(c, domain.Invalid("category_id", "category does not exist"))
		return
	}
	res, err := s.cfg.Catalog.CreateProduct(c, metadata(c), commands.CreateProduct{
		Name: req.Name, Description: req.Description, Price: *price, CategoryID: req.CategoryID, Stock: req.Stock})
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("Location", fmt.Sprintf("/api/v1/products/%d", res.ID))
	c.JSON(nethttp.StatusCreated, toProductResponse(res))
}

func (s *Server) updateProduct(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	var req updateProductRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	cmd := commands.UpdateProduct{ID: id, Name: req.Name, Description: req.Description}
	if cmd.Price, err = optionalMoney("price", req.Price); err != nil {
		writeError(c, err)
		return
	}
	switch {
	case req.CategoryID == nil:
	case string(req.CategoryID) == "null":
		cmd.ClearCategory = true
	default:
		var cat int64
		if json.Unmarshal(req.CategoryID, &cat) != nil {
			writeError(c, badRequest("category_id", "category_id must be a whole number or null"))
			return
		}
		if cat <= 0 || cat > maxID {
			writeError(c, domain.Invalid("category_id", "category does not exist"))
			return
		}
		cmd.CategoryID = &cat
	}
	if cmd.Name == nil && cmd.Description == nil && cmd.Price == nil && cmd.CategoryID == nil && !cmd.ClearCategory {
		writeError(c, domain.Invalid("", "nothing to update: give name, description, price and/or category_id"))
		return
	}
	res, err := s.cfg.Catalog.UpdateProduct(c, metadata(c), cmd)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toProductResponse(res))
}

func (s *Server) adjustStock(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	var req stockRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if (req.Delta == nil) == (req.Quantity == nil) {
		writeError(c, domain.Invalid("", "give exactly one of delta and quantity"))
		return
	}
	cmd := commands.AdjustStock{ID: id, Quantity: req.Quantity}
	if req.Delta != nil {
		cmd.Delta = *req.Delta
	}
	res, err := s.cfg.Catalog.AdjustStock(c, metadata(c), cmd)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toProductResponse(res))
}

// Queries.

const maxID = 1<<31 - 1

// Read-your-writes headers.
const (
	MinPositionHeader     = "X-Min-Position"
	PositionReachedHeader = "X-Min-Position-Reached"
	// ReadSourceHeader says where a product was read from: "redis" or "postgres".
	ReadSourceHeader = "X-Read-Source"
)

// awaitPosition honours X-Min-Position: it waits (bounded, for all of them together) until every
// one of projectors has processed that position; a query that joins the tables of several
// projectors names them all. It reports whether a position was asked for. On timeout the query
// is answered anyway, with X-Min-Position-Reached: false.
func (s *Server) awaitPosition(c *gin.Context, projectors ...string) (bool, error) {
	h := c.GetHeader(MinPositionHeader)
	if h == "" {
		return false, nil
	}
	pos, err := strconv.ParseInt(h, 10, 64)
	if err != nil || pos < 0 {
		return true, badRequest(MinPositionHeader, "X-Min-Position must be a non-negative integer (a command's position)")
	}
	deadline := time.Now().Add(s.cfg.MinPositionWait)
	reached := true
	for _, p := range projectors {
		ok, err := s.cfg.Positions.WaitFor(c, p, pos, max(time.Until(deadline), 0))
		if errors.Is(err, projections.ErrPositionBeyondLog) {
			return true, badRequest(MinPositionHeader, "X-Min-Position is beyond the end of the log; use the position a command returned")
		}
		if err != nil {
			return true, err
		}
		reached = reached && ok
	}
	c.Header(PositionReachedHeader, strconv.FormatBool(reached))
	return true, nil
}

func queryLimit(c *gin.Context) (int, error) {
	s := c.Query("limit")
	if s == "" {
		return 20, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 100 {
		return 0, badRequest("limit", "limit must be a whole number from 1 to 100")
	}
	return n, nil
}

func (s *Server) listCategories(c *gin.Context) {
	limit, err := queryLimit(c)
	if err != nil {
		writeError(c, err)
		return
	}
	if _, err := s.awaitPosition(c, catalogproj.CategoriesProjector); err != nil {
		writeError(c, err)
		return
	}
	page, err := s.cfg.Queries.Categories(c, limit, c.Query("cursor"))
	if err != nil {
		writeError(c, asBadRequest(err))
		return
	}
	c.JSON(nethttp.StatusOK, toPageView(page, toCategoryView))
}

func (s *Server) getCategory(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	if _, err := s.awaitPosition(c, catalogproj.CategoriesProjector); err != nil {
		writeError(c, err)
		return
	}
	cat, err := s.cfg.Queries.Category(c, id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toCategoryView(cat))
}

// maxSearchLength bounds q.
const maxSearchLength = 200

// searchText reads the free-text parameter q: valid UTF-8 without NUL (a Postgres text value
// cannot hold one), at most maxLen characters.
func searchText(c *gin.Context, maxLen int) (string, error) {
	q := c.Query("q")
	if !utf8.ValidString(q) || strings.ContainsRune(q, 0) || utf8.RuneCountInString(q) > maxLen {
		return "", badRequest("q", fmt.Sprintf("q must be valid text (no NUL) of at most %d characters", maxLen))
	}
	return q, nil
}

func productFilter(c *gin.Context) (queries.ProductFilter, error) {
	var (
		f   queries.ProductFilter
		err error
	)
	if f.Limit, err = queryLimit(c); err != nil {
		return f, err
	}
	f.Cursor = c.Query("cursor")
	f.Sort = c.Query("sort")
	if _, ok := queries.ProductSorts[f.Sort]; !ok {
		return f, badRequest("sort", "sort must be one of price, -price, name, -created_at, -rating")
	}
	if f.Q, err = searchText(c, maxSearchLength); err != nil {
		return f, err
	}
	if v := c.Query("category_id"); v != "" {
		id, err := parseID("category_id", v)
		if err != nil {
			return f, err
		}
		f.CategoryID = &id
	}
	for _, p := range []struct {
		name string
		dst  **domain.Money
	}{{"min_price", &f.MinPrice}, {"max_price", &f.MaxPrice}} {
		v := c.Query(p.name)
		if v == "" {
			continue
		}
		m, err := domain.ParseMoney(v)
		if err != nil || m < 0 {
			return f, badRequest(p.name, p.name+" must be a non-negative decimal amount such as 19.99")
		}
		*p.dst = &m
	}
	if f.MinPrice != nil && f.MaxPrice != nil && *f.MinPrice > *f.MaxPrice {
		return f, badRequest("min_price", "min_price must not be greater than max_price")
	}
	if v := c.Query("in_stock"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, badRequest("in_stock", "in_stock must be true or false")
		}
		f.InStock = &b
	}
	return f, nil
}

func (s *Server) listProducts(c *gin.Context) {
	f, err := productFilter(c)
	if err != nil {
		writeError(c, err)
		return
	}
	projectors := []string{catalogproj.ProductsProjector}
	if f.CategoryID != nil { // the category heads the page
		projectors = append(projectors, catalogproj.CategoriesProjector)
	}
	waited, err := s.awaitPosition(c, projectors...)
	if err != nil {
		writeError(c, err)
		return
	}
	s.answerListing(c, f, waited) // listings.go
}

// getProduct answers from the Redis product cards when it can, from Postgres otherwise (Redis
// down, card missing, or the client asked to read its own write).
func (s *Server) getProduct(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	waited, err := s.awaitPosition(c, catalogproj.ProductsProjector)
	if err != nil {
		writeError(c, err)
		return
	}
	if !waited && s.cfg.Cards != nil {
		if card, ok := s.cfg.Cards.Get(c, id); ok {
			c.Header(ReadSourceHeader, "redis")
			c.Data(nethttp.StatusOK, "application/json; charset=utf-8", card)
			return
		}
	}
	p, err := s.cfg.Queries.Product(c, id)
	if err != nil {
		writeError(c, err)
		return
	}
	card, err := ProductCard(p)
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header(ReadSourceHeader, "postgres")
	c.Data(nethttp.StatusOK, "application/json; charset=utf-8", card)
}

// asBadRequest turns query-parameter validation errors (ErrInvalid from the queries) into 400s.
func asBadRequest(err error) error {
	var de *domain.Error
	if errors.As(err, &de) && errors.Is(err, domain.ErrInvalid) {
		return badRequest(de.Field, de.Message)
	}
	return err
}
