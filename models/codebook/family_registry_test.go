package codebook

import "github.com/hiddenlab/hiddenlab/experiment"

// The package's own tests run recipes through the engine; package families
// (which imports this one) registers the family everywhere else.
func init() { experiment.Register("codebook", Family{}) }
