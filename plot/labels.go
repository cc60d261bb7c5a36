package plot

import "strings"

// splitLabels labels metric keys whose meaning depends on the split, by the
// full key as it is named in a run's metrics ("<split>.<metric>").
var splitLabels = map[string]string{
	"train.loss":    "train loss (cross-entropy + auxiliary losses)",
	"eval.loss":     "eval cross-entropy (nats/token)",
	"train.ce":      "train cross-entropy (nats/token)",
	"train.mse":     "train codebook reconstruction MSE",
	"eval.accuracy": "eval next-token accuracy (fraction)",
	"eval.ppl":      "eval perplexity (exp cross-entropy)",
	"train.reward":  "train mean reward per completion",
	"train.kl":      "train KL to the reference policy (k3 estimate)",
}

// metricLabels labels bare metric names. Under a split prefix other than
// those in splitLabels, the split is written before the label, unless the
// metric is one of splitFree.
var metricLabels = map[string]string{
	"loss":         "loss",
	"ce":           "cross-entropy (nats/token)",
	"mse":          "codebook reconstruction MSE",
	"accuracy":     "accuracy (fraction)",
	"ppl":          "perplexity (exp cross-entropy)",
	"reward":       "mean reward per completion",
	"kl":           "KL to the reference policy (k3 estimate)",
	"hidden_ratio": "hidden ratio √(1 − a²)",
	"grad_norm":    "gradient norm (L2, before clipping)",
	"lr":           "learning rate",
	"tok_per_s":    "throughput (tokens/s)",
	"tokens":       "tokens seen",
	"step_ms":      "step time (ms)",
	"step_s":       "step time (s)",
}

// splitFree metrics describe the optimiser or the machine, not a split:
// their labels never carry one.
var splitFree = map[string]bool{
	"grad_norm": true, "lr": true, "tok_per_s": true, "tokens": true, "step_ms": true, "step_s": true,
}

// splits are the prefixes a metric key may carry.
var splits = []string{"train", "eval", "val", "test"}

// Label returns an axis label for a metric key as runs log it: a bare name
// such as "grad_norm" or "lr", or one under a split such as "eval.loss" or
// "train.reward" ("/" may stand for "."). Known metrics get a readable name
// with their unit, e.g. "eval cross-entropy (nats/token)", "gradient norm
// (L2, before clipping)", "throughput (tokens/s)"; an unknown key falls back
// to the key with its separators as spaces ("eval.router_cv_max" → "eval
// router cv max").
func Label(key string) string {
	k := strings.ReplaceAll(strings.TrimSpace(key), "/", ".")
	if l, ok := splitLabels[k]; ok {
		return l
	}
	if l, ok := metricLabels[k]; ok {
		return l
	}
	for _, s := range splits {
		name, ok := strings.CutPrefix(k, s+".")
		if !ok {
			continue
		}
		if l, ok := metricLabels[name]; ok {
			if splitFree[name] {
				return l
			}
			return s + " " + l
		}
	}
	clean := strings.Join(strings.FieldsFunc(k, func(r rune) bool { return r == '.' || r == '_' || r == ' ' }), " ")
	if clean == "" {
		return key
	}
	return clean
}
