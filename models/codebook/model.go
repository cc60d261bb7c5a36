package codebook

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/models/gpt"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// Settings is the codebook part of a recipe's model section.
type Settings struct {
	// At lists the insertion points (paper §1.5): attn_preproj (one codebook
	// per head, before the output projection) and mlp (the MLP output before
	// the residual add) in the paper; attn, attn_plus_mlp, residual and
	// mlp_mid as options. Empty: no codebooks (the baseline).
	At []string `key:"at"`
	// Layers the codebooks go into (empty: all).
	Layers []int `key:"layers"`
	Codes  int   `key:"codes"` // C, per codebook
	K      int   `key:"k"`
	// Groups overrides the number of codebooks per point (default: heads at
	// attn_preproj, 1 elsewhere).
	Groups map[string]int `key:"groups"`
	// ModelLRFactor scales the learning rate of the model's own parameters
	// relative to the codebooks' (train.optimizer.lr); 0 freezes them.
	ModelLRFactor float64 `key:"model_lr_factor"`
	// ReplaceEvery replaces codes unused for this many steps by random
	// normalised inputs (+ReplaceRho noise); 0: off, as in the paper runs.
	ReplaceEvery int     `key:"replace_every"`
	ReplaceRho   float64 `key:"replace_rho"`
	// KMeansInit initialises codes with k-means on this many training
	// batches' activations (0: off).
	KMeansInit  int `key:"kmeans_init"`
	KMeansIters int `key:"kmeans_iters"`
	// Reference runs the unfused selection (tensor ops with autograd)
	// instead of the shim's fused codebook op (fused.go); both give the same
	// ids and, to float rounding, the same outputs and gradients.
	Reference bool `key:"reference"`
}

// Config is a codebook recipe's model section: a GPT plus codebooks.
type Config struct {
	gpt.Config `key:",inline"`
	Codebook   Settings `key:"codebook"`
}

// DefaultConfig is the model section's defaults.
func DefaultConfig() Config {
	return Config{Config: gpt.Default(), Codebook: Settings{At: []string{"attn_preproj", "mlp"}, Codes: 1024, K: 1,
		ModelLRFactor: 1, KMeansIters: 10, ReplaceRho: 1e-4}}
}

var points = map[string]nn.Point{
	"attn_preproj": nn.AttnPreProj, "mlp": nn.MLPOut, "attn": nn.AttnOut,
	"attn_plus_mlp": nn.AttnPlusMLP, "residual": nn.Residual, "mlp_mid": nn.MLPMid,
}

// Model is a GPT with codebooks at its insertion points.
type Model struct {
	*nn.GPT
	Sites  []nn.Site // codebook sites in forward order
	Layers map[nn.Site]*Layer
	Set    Settings
	steps  int
}

// NewModel inserts the codebooks of s into g (which keeps ownership of all
// parameters: they live in its store, named blocks.L.codebook.<point>.*).
func NewModel(g *nn.GPT, s Settings) (*Model, error) {
	m := &Model{GPT: g, Layers: map[nn.Site]*Layer{}, Set: s}
	layers := s.Layers
	if len(layers) == 0 {
		for i := range g.Blocks {
			layers = append(layers, i)
		}
	}
	for _, li := range layers {
		if li < 0 || li >= len(g.Blocks) {
			return nil, fmt.Errorf("codebook.layers: layer %d out of range (the model has %d)", li, len(g.Blocks))
		}
		for _, name := range s.At {
			pt, ok := points[name]
			if !ok {
				return nil, fmt.Errorf("codebook.at: unknown point %q (want attn_preproj, mlp, attn, attn_plus_mlp, residual or mlp_mid)", name)
			}
			if pt == nn.AttnPlusMLP && !g.Config.ParallelResidual {
				return nil, fmt.Errorf("codebook.at: attn_plus_mlp needs parallel_residual: true")
			}
			width := g.Config.Width
			if pt == nn.MLPMid {
				width = g.Config.MLPHidden()
			}
			G := 1
			if pt == nn.AttnPreProj {
				G = g.Config.Heads
			}
			if v, ok := s.Groups[name]; ok {
				G = v
			}
			site := nn.Site{Layer: li, Point: pt}
			p := g.Store.Root().Sub("blocks").Index(li).Sub("codebook").Sub(name)
			l, err := NewLayer(p, width, G, s.Codes, s.K)
			if err != nil {
				return nil, fmt.Errorf("codebook at %s: %w", site, err)
			}
			// The official code trains a vanilla codebook's LayerNorm only when
			// the whole codebook module is registered (group codebooks,
			// attn_preproj, attn_plus_mlp); at mlp and the other points only the
			// code table trains and γ, β stay at 1, 0. We follow the code.
			if G == 1 && pt != nn.AttnPreProj && pt != nn.AttnPlusMLP {
				l.LNW.SetRequiresGrad(false)
				l.LNB.SetRequiresGrad(false)
			}
			m.Sites = append(m.Sites, site)
			l.Reference = s.Reference
			m.Layers[site] = l
			g.Hooks.Add(site, l.Forward)
		}
	}
	sort.Slice(m.Sites, func(i, j int) bool { return siteOrder(m.Sites[i]) < siteOrder(m.Sites[j]) })
	return m, nil
}

func siteOrder(s nn.Site) int {
	order := map[nn.Point]int{nn.AttnPreProj: 0, nn.AttnOut: 1, nn.MLPMid: 2, nn.MLPOut: 3, nn.AttnPlusMLP: 4, nn.Residual: 5}
	return s.Layer*10 + order[s.Point]
}

// IsCodebookParam reports whether a parameter name belongs to a codebook.
func IsCodebookParam(name string) bool { return strings.Contains(name, ".codebook.") }

// Store implements lm.Model.
func (m *Model) Store() *nn.Store { return m.GPT.Store }

// Forward implements lm.Model.
func (m *Model) Forward(ids *torch.Tensor) *torch.Tensor { return m.GPT.Forward(ids, nil) }

// AuxLoss implements lm.AuxLosser: the sum of every codebook's
// reconstruction loss (λ = 1, paper §2.1).
func (m *Model) AuxLoss() (*torch.Tensor, experiment.Logs) {
	var total *torch.Tensor
	for _, s := range m.Sites {
		if mse := m.Layers[s].MSE(); mse != nil {
			if total == nil {
				total = mse
			} else {
				total = total.Add(mse)
			}
		}
	}
	if total == nil {
		return nil, nil
	}
	return total, experiment.Logs{"mse": total.Item()}
}

// SetRecord turns id recording on or off for every codebook.
func (m *Model) SetRecord(on bool) {
	for _, l := range m.Layers {
		l.Record = on
	}
}

// ClearInterventions removes every codebook's intervention.
func (m *Model) ClearInterventions() {
	for _, l := range m.Layers {
		l.Intervention = nil
	}
}

// DeadFractions reports each codebook site's share of unused codes.
func (m *Model) DeadFractions() experiment.Logs {
	out := experiment.Logs{}
	for _, s := range m.Sites {
		out["dead/"+s.String()] = m.Layers[s].DeadFraction()
	}
	return out
}

// Close frees the codebooks' recordings and the GPT.
func (m *Model) Close() {
	for _, l := range m.Layers {
		l.Close()
	}
	m.GPT.Close()
}

// Groups implements experiment.Grouper: the codebooks (codes, and the LayerNorms
// that train) at the recipe's LR without weight decay; the model's own
// parameters at model_lr_factor × LR, with decay on matrices and embeddings.
func (m *Model) Groups(o experiment.Optimizer) []*optim.Group {
	var codes, decay, plain []*nn.Param
	for _, p := range m.Store().Params() {
		switch {
		case !p.T.RequiresGrad():
		case IsCodebookParam(p.Name):
			codes = append(codes, p)
		case p.T.Dim() >= 2:
			decay = append(decay, p)
		default:
			plain = append(plain, p)
		}
	}
	lr := o.LR * m.Set.ModelLRFactor
	return []*optim.Group{
		experiment.Group("codebook", codes, o, o.LR, 0),
		experiment.Group("model_decay", decay, o, lr, o.WeightDecay),
		experiment.Group("model_no_decay", plain, o, lr, 0),
	}
}

// Build decodes a codebook model section into a GPT with codebooks.
func Build(r *experiment.Recipe, env experiment.Env, d lm.Data) (*Model, error) {
	cfg := DefaultConfig()
	if err := r.Decode("model", &cfg); err != nil {
		return nil, err
	}
	s := cfg.Codebook
	if err := lm.FitData(r, d, &cfg.Vocab, &cfg.Context); err != nil {
		return nil, err
	}
	gc := cfg.Config.GPTConfig(d)
	cfg.Family = r.Family
	r.Record("model", &cfg)
	g, err := nn.NewGPT(gc)
	if err != nil {
		return nil, fmt.Errorf("%s: model: %w", r.Raw.Path, err)
	}
	m, err := NewModel(g, s)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("%s: model.%w", r.Raw.Path, err)
	}
	if s.ModelLRFactor == 0 {
		m.Store().Freeze(func(name string) bool { return !IsCodebookParam(name) })
	}
	if err := g.Store.To(env.Device); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}
