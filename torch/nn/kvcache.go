package nn

import "github.com/hiddenlab/hiddenlab/torch"

// KVCache holds each layer's keys and values for incremental decoding:
// preallocated [B, H, Max, headDim] tensors filled as tokens arrive. It is for
// inference (writes are not recorded by autograd). With grouped-query
// attention H is the number of key/value heads.
type KVCache struct {
	K, V []*torch.Tensor
	Max  int
	// Len is the number of positions filled.
	Len int
}

// NewKVCache allocates a cache for layers layers of heads×headDim at batch
// size batch and up to max positions.
func NewKVCache(layers, batch, heads, headDim, max int, dtype torch.DType, device torch.Device) *KVCache {
	c := &KVCache{Max: max}
	for i := 0; i < layers; i++ {
		c.K = append(c.K, torch.Zeros([]int{batch, heads, max, headDim}, dtype, device).Retain())
		c.V = append(c.V, torch.Zeros([]int{batch, heads, max, headDim}, dtype, device).Retain())
	}
	return c
}

// append writes k, v [B, H, L, hd] at positions offset… of layer and returns
// the keys and values of positions 0…offset+L−1.
func (c *KVCache) append(layer int, k, v *torch.Tensor, offset int) (*torch.Tensor, *torch.Tensor) {
	L := k.Size(2)
	if offset+L > c.Max {
		panic(&torch.Error{Op: "kv_cache", Kind: torch.KindIndex, Msg: "KV cache full"})
	}
	c.K[layer].Narrow(2, offset, L).CopyFrom(k)
	c.V[layer].Narrow(2, offset, L).CopyFrom(v)
	return c.K[layer].Narrow(2, 0, offset+L), c.V[layer].Narrow(2, 0, offset+L)
}

// Reset empties the cache for reuse.
func (c *KVCache) Reset() { c.Len = 0 }

// Close frees the cache's tensors.
func (c *KVCache) Close() {
	for i := range c.K {
		c.K[i].Free()
		c.V[i].Free()
	}
	c.K, c.V = nil, nil
}
