package http

import (
	"context"
	nethttp "net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/review"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/reviewproj"
	"github.com/techvault/techvault/projections/userproj"
	"github.com/techvault/techvault/queries"
)

// Request and response bodies of the reviews.

// reviewRequest is POST /products/{id}/reviews' body (rating required) and PATCH /reviews/{id}'s
// (every field optional). A rating that is not a whole number is a malformed request (400).
type reviewRequest struct {
	Rating *int    `json:"rating"`
	Title  *string `json:"title"`
	Text   *string `json:"text"`
}

type reviewCommandResponse struct {
	ID           int64  `json:"id"`
	ProductID    int64  `json:"product_id"`
	UserID       int64  `json:"user_id"`
	Rating       int    `json:"rating"`
	Title        string `json:"title"`
	Text         string `json:"text"`
	Hidden       bool   `json:"hidden"`
	HelpfulCount int64  `json:"helpful_count"`
	Position     int64  `json:"position"`
}

type reviewView struct {
	ID               int64     `json:"id"`
	ProductID        int64     `json:"product_id"`
	UserID           int64     `json:"user_id"`
	Author           string    `json:"author"`
	Rating           int       `json:"rating"`
	Title            string    `json:"title"`
	Text             string    `json:"text"`
	VerifiedPurchase bool      `json:"verified_purchase"`
	HelpfulCount     int64     `json:"helpful_count"`
	Hidden           bool      `json:"hidden"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

func toReviewCommandResponse(r commands.ReviewResult) reviewCommandResponse {
	return reviewCommandResponse{ID: r.ID, ProductID: r.ProductID, UserID: r.UserID, Rating: r.Rating, Title: r.Title,
		Text: r.Text, Hidden: r.Hidden, HelpfulCount: r.Helpful, Position: r.Position}
}

func toReviewView(r queries.ReviewView) reviewView {
	return reviewView{ID: r.ID, ProductID: r.ProductID, UserID: r.UserID, Author: r.Author, Rating: r.Rating,
		Title: r.Title, Text: r.Text, VerifiedPurchase: r.VerifiedPurchase, HelpfulCount: r.HelpfulCount,
		Hidden: r.Hidden, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// reviewActor is the signed-in caller as the review commands see it.
func reviewActor(c *gin.Context) review.Actor {
	p := me(c)
	return review.Actor{UserID: p.UserID, Admin: p.Role == roleAdmin}
}

func (s *Server) reviewRoutes(v1, user, admin *gin.RouterGroup) {
	v1.GET("/products/:id/reviews", s.listReviews)
	user.POST("/products/:id/reviews", idempotent, s.createReview)
	user.PATCH("/reviews/:id", idempotent, s.editReview)
	user.DELETE("/reviews/:id", bodiless, s.deleteReview)
	user.POST("/reviews/:id/helpful", bodiless, s.reviewCommand(func(ctx context.Context, md domain.Metadata, id int64, a review.Actor) (commands.ReviewResult, error) {
		return s.cfg.Reviews.MarkReviewHelpful(ctx, md, id, a)
	}))
	admin.POST("/reviews/:id/hide", bodiless, s.reviewCommand(func(ctx context.Context, md domain.Metadata, id int64, _ review.Actor) (commands.ReviewResult, error) {
		return s.cfg.Reviews.HideReview(ctx, md, id)
	}))
	admin.POST("/reviews/:id/unhide", bodiless, s.reviewCommand(func(ctx context.Context, md domain.Metadata, id int64, _ review.Actor) (commands.ReviewResult, error) {
		return s.cfg.Reviews.UnhideReview(ctx, md, id)
	}))
}

// reviewCommand answers a bodyless command on the review the path names.
func (s *Server) reviewCommand(run func(ctx context.Context, md domain.Metadata, id int64, a review.Actor) (commands.ReviewResult, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := pathID(c, "id")
		if err != nil {
			writeError(c, err)
			return
		}
		res, err := run(c, metadata(c), id, reviewActor(c))
		if err != nil {
			writeError(c, err)
			return
		}
		c.JSON(nethttp.StatusOK, toReviewCommandResponse(res))
	}
}

func (s *Server) createReview(c *gin.Context) {
	pid, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	var req reviewRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Rating == nil {
		writeError(c, domain.Invalid("rating", "rating is required: a whole number from %d to %d", review.MinRating, review.MaxRating))
		return
	}
	content := review.Content{Rating: *req.Rating}
	if req.Title != nil {
		content.Title = *req.Title
	}
	if req.Text != nil {
		content.Text = *req.Text
	}
	res, err := s.cfg.Reviews.CreateReview(c, metadata(c), commands.CreateReview{ProductID: pid, UserID: me(c).UserID, Content: content})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusCreated, toReviewCommandResponse(res))
}

func (s *Server) editReview(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	var req reviewRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Rating == nil && req.Title == nil && req.Text == nil {
		writeError(c, domain.Invalid("", "nothing to update: give rating, title and/or text"))
		return
	}
	res, err := s.cfg.Reviews.EditReview(c, metadata(c), commands.EditReview{ID: id, Actor: reviewActor(c),
		Patch: review.Patch{Rating: req.Rating, Title: req.Title, Text: req.Text}})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toReviewCommandResponse(res))
}

func (s *Server) deleteReview(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	res, err := s.cfg.Reviews.DeleteReview(c, metadata(c), id, reviewActor(c))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, deletedResponse{ID: id, Deleted: true, Position: res.Position})
}

// listReviews lists a product's reviews (public). Hidden reviews are listed to admins, and to
// their author, with "hidden": true.
func (s *Server) listReviews(c *gin.Context) {
	pid, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	limit, err := queryLimit(c)
	if err != nil {
		writeError(c, err)
		return
	}
	f := queries.ReviewFilter{ProductID: pid, Sort: c.Query("sort"), Limit: limit, Cursor: c.Query("cursor")}
	if _, ok := queries.ReviewSorts[f.Sort]; !ok {
		writeError(c, badRequest("sort", "sort must be -created_at (newest first, the default) or -helpful"))
		return
	}
	if p, ok := caller(c); ok {
		f.Viewer = queries.ReviewViewer{UserID: p.UserID, Admin: p.Role == roleAdmin}
	}
	// The list joins the products (does the product exist) and the users (authors' names).
	if _, err := s.awaitPosition(c, reviewproj.ReviewsProjector, catalogproj.ProductsProjector, userproj.UsersProjector); err != nil {
		writeError(c, err)
		return
	}
	page, err := s.cfg.ReviewQueries.ProductReviews(c, f)
	if err != nil {
		writeError(c, asBadRequest(err))
		return
	}
	c.JSON(nethttp.StatusOK, toPageView(page, toReviewView))
}
