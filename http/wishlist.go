package http

import (
	"context"
	nethttp "net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/wishlistproj"
	"github.com/techvault/techvault/queries"
)

// wishlistResponse answers a wishlist command: whether the product is on the wishlist now, and
// whether this call changed that (adding a product twice changes nothing the second time).
type wishlistResponse struct {
	UserID     int64 `json:"user_id"`
	ProductID  int64 `json:"product_id"`
	OnWishlist bool  `json:"on_wishlist"`
	Changed    bool  `json:"changed"`
	Position   int64 `json:"position"`
}

// wishlistItemView is a product on the caller's wishlist, as it is now.
type wishlistItemView struct {
	ID      int64       `json:"id"`
	AddedAt time.Time   `json:"added_at"`
	Product productView `json:"product"`
}

func toWishlistItemView(it queries.WishlistItem) wishlistItemView {
	return wishlistItemView{ID: it.ID, AddedAt: it.AddedAt, Product: toProductView(it.Product)}
}

func (s *Server) wishlistRoutes(user *gin.RouterGroup) {
	user.GET("/wishlist", s.listWishlist)
	user.POST("/wishlist/:product_id", bodiless, s.wishlistCommand(s.cfg.Wishlists.AddToWishlist, true))
	user.DELETE("/wishlist/:product_id", bodiless, s.wishlistCommand(s.cfg.Wishlists.RemoveFromWishlist, false))
}

// wishlistCommand runs a wishlist command on the caller's own wishlist for the product in the
// path; onWishlist is where the product is once it succeeded.
func (s *Server) wishlistCommand(run func(ctx context.Context, md domain.Metadata, userID, productID int64) (commands.WishlistResult, error),
	onWishlist bool,
) gin.HandlerFunc {
	return func(c *gin.Context) {
		pid, err := pathID(c, "product_id")
		if err != nil {
			writeError(c, err)
			return
		}
		res, err := run(c, metadata(c), me(c).UserID, pid)
		if err != nil {
			writeError(c, err)
			return
		}
		c.JSON(nethttp.StatusOK, wishlistResponse{UserID: res.UserID, ProductID: res.ProductID, OnWishlist: onWishlist,
			Changed: res.Changed, Position: res.Position})
	}
}

// listWishlist lists the caller's wishlist, newest first, with each product's price, stock and
// cover as they are now.
func (s *Server) listWishlist(c *gin.Context) {
	limit, err := queryLimit(c)
	if err != nil {
		writeError(c, err)
		return
	}
	if _, err := s.awaitPosition(c, wishlistproj.WishlistProjector, catalogproj.ProductsProjector); err != nil {
		writeError(c, err)
		return
	}
	page, err := s.cfg.WishlistQueries.Wishlist(c, me(c).UserID, limit, c.Query("cursor"))
	if err != nil {
		writeError(c, asBadRequest(err))
		return
	}
	c.JSON(nethttp.StatusOK, toPageView(page, toWishlistItemView))
}
