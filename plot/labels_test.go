package plot

import "testing"

func TestLabel(t *testing.T) {
	tests := []struct{ key, want string }{
		{"eval.loss", "eval cross-entropy (nats/token)"},
		{"train.loss", "train loss (cross-entropy + auxiliary losses)"},
		{"train.ce", "train cross-entropy (nats/token)"},
		{"train.mse", "train codebook reconstruction MSE"},
		{"grad_norm", "gradient norm (L2, before clipping)"},
		{"train.grad_norm", "gradient norm (L2, before clipping)"},
		{"lr", "learning rate"},
		{"train.lr", "learning rate"},
		{"tok_per_s", "throughput (tokens/s)"},
		{"eval.accuracy", "eval next-token accuracy (fraction)"},
		{"eval.ppl", "eval perplexity (exp cross-entropy)"},
		{"train.reward", "train mean reward per completion"},
		{"train.kl", "train KL to the reference policy (k3 estimate)"},
		{"hidden_ratio", "hidden ratio √(1 − a²)"},
		{"eval.hidden_ratio", "eval hidden ratio √(1 − a²)"},
		{"eval.ce", "eval cross-entropy (nats/token)"},
		{"train/loss", "train loss (cross-entropy + auxiliary losses)"},
		{"loss", "loss"},
		// Unknown keys: separators become spaces.
		{"eval.router_cv_max", "eval router cv max"},
		{"recall_accuracy", "recall accuracy"},
		{"trainer.loss", "trainer loss"},
		{"", ""},
		{"._", "._"},
	}
	for _, tt := range tests {
		if got := Label(tt.key); got != tt.want {
			t.Errorf("Label(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
