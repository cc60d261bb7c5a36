// Package families is the one registration list of model families: the
// names recipes use as model.family and the package that implements each.
// Commands, tests and tools that run or reopen recipes import it (for its
// side effect) instead of importing families one by one.
package families

import (
	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/models/gpt"
	"github.com/hiddenlab/hiddenlab/models/hrpo"
	"github.com/hiddenlab/hiddenlab/models/mohd"
	"github.com/hiddenlab/hiddenlab/models/sae"
)

// List is every family, by model.family name.
var List = []struct {
	Name   string
	Family experiment.Family
}{
	{"gpt", gpt.Family{}},           // a plain GPT language model (the vanilla baseline)
	{"codebook", codebook.Family{}}, // codebook features (Tamkin et al. 2023)
	{"mohd", mohd.Family{}},         // Mixture of Hidden Dimensions (Chen et al. 2024)
	{"hrpo", hrpo.Family{}},         // hybrid latent reasoning with HRPO (Yue et al. 2025)
	{"sae", sae.Family{}},           // sparse autoencoders on a run's activations (Gao et al. 2024; Bricken et al. 2023)
}

func init() {
	for _, f := range List {
		experiment.Register(f.Name, f.Family)
	}
}
