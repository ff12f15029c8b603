package http

import (
	nethttp "net/http"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/projections"
)

type projectionStatus struct {
	projections.Status
	Rebuilding bool `json:"rebuilding"`
}

func (s *Server) projectorNames() []string {
	names := make([]string, 0, len(s.cfg.Projectors))
	for _, p := range s.cfg.Projectors {
		names = append(names, p.Name())
	}
	return names
}

func (s *Server) projectionStatus(c *gin.Context) {
	st, err := s.cfg.Checkpoints.Status(c, s.projectorNames()...)
	if err != nil {
		writeError(c, err)
		return
	}
	out := make([]projectionStatus, 0, len(st))
	s.rebuilds.Lock()
	for _, x := range st {
		out = append(out, projectionStatus{Status: x, Rebuilding: s.rebuilds.running[x.Name]})
	}
	s.rebuilds.Unlock()
	c.JSON(nethttp.StatusOK, gin.H{"items": out})
}

// rebuildProjection starts a zero-downtime rebuild in the background and answers 202 at once;
// GET /admin/projections shows it running.
func (s *Server) rebuildProjection(c *gin.Context) {
	name := c.Param("name")
	var p projections.Projector
	for _, x := range s.cfg.Projectors {
		if x.Name() == name {
			p = x
		}
	}
	if p == nil {
		writeError(c, domain.NotFound("no projector named %q", name))
		return
	}
	s.rebuilds.Lock()
	if s.rebuilds.running[name] {
		s.rebuilds.Unlock()
		writeError(c, domain.Conflict("projector %s is already being rebuilt", name))
		return
	}
	s.rebuilds.running[name] = true
	s.rebuilds.wg.Add(1)
	s.rebuilds.Unlock()

	log := logger(c)
	go func() {
		defer s.rebuilds.wg.Done()
		defer func() {
			s.rebuilds.Lock()
			delete(s.rebuilds.running, name)
			s.rebuilds.Unlock()
		}()
		if _, err := projections.Rebuild(s.bg, s.cfg.Pool, p, log); err != nil {
			log.Error("rebuild failed", "projector", name, "err", err)
		}
	}()
	c.JSON(nethttp.StatusAccepted, gin.H{"projector": name, "rebuilding": true})
}
