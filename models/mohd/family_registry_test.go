package mohd

import (
	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/models/gpt"
)

// The package's own tests run recipes through the engine (and compare with
// the gpt family); package families registers them everywhere else.
func init() {
	experiment.Register("mohd", Family{})
	experiment.Register("gpt", gpt.Family{})
}
