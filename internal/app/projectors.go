package app

import (
	"fmt"

	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/orderproj"
	"github.com/techvault/techvault/projections/reviewproj"
	"github.com/techvault/techvault/projections/userproj"
	"github.com/techvault/techvault/projections/wishlistproj"
)

// Projectors returns every projector of every read model, in a stable order: the engine runs
// them, the admin API and `techvault projections` report and rebuild them. A new read model
// adds its projectors here (the framework knows none of them).
func Projectors() []projections.Projector {
	var all []projections.Projector
	all = append(all, catalogproj.Projectors()...)
	all = append(all, userproj.Projectors()...)
	all = append(all, orderproj.Projectors()...)
	all = append(all, reviewproj.Projectors()...)
	all = append(all, wishlistproj.Projectors()...)
	return all
}

// ProjectorByName finds a projector of any read model.
func ProjectorByName(name string) (projections.Projector, error) {
	for _, p := range Projectors() {
		if p.Name() == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no projector named %q", name)
}
