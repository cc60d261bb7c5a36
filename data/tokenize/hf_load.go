package tokenize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// LoadHF reads a Hugging Face tokenizer.json (gzip-compressed or not) whose
// model is a byte-level BPE; see HF for what it supports. Errors name the
// file and the JSON field at fault, such as
//
//	tokenizer x/tokenizer.json: model.merges[12]: "Ġq" is not in model.vocab
func LoadHF(path string) (*HF, error) {
	data, err := readTokenizerFile(path)
	if err != nil {
		return nil, err
	}
	return parseHF(path, data)
}

// hfTopKeys are the top-level keys of a Hugging Face tokenizer.json; a file
// with any of them is read as one.
var hfTopKeys = []string{"version", "model", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"}

// hfErr is an error about field of the file at path.
func hfErr(path, field, format string, args ...any) error {
	return fmt.Errorf("tokenizer %s: %s: %s", path, field, fmt.Sprintf(format, args...))
}

// topLevel splits a JSON object into its keys' raw values. On an error it
// returns what it read so far and an error naming the key whose value was
// bad, if any.
func topLevel(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	top := map[string]json.RawMessage{}
	tok, err := dec.Token()
	if err != nil {
		return top, err
	}
	if tok != json.Delim('{') {
		return top, fmt.Errorf("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return top, err
		}
		key := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return top, fmt.Errorf("%s: %w", key, jsonErr(err))
		}
		top[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return top, jsonErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return top, fmt.Errorf("data after the JSON object")
	}
	return top, nil
}

// jsonErr says "truncated JSON" for an unexpected end of the input.
func jsonErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		return fmt.Errorf("truncated JSON (%w)", err)
	}
	return err
}

// isHF reports whether data looks like a Hugging Face tokenizer.json: a JSON
// object with one of hfTopKeys, even if it is cut short after it.
func isHF(data []byte) bool {
	top, _ := topLevel(data)
	for _, k := range hfTopKeys {
		if _, ok := top[k]; ok {
			return true
		}
	}
	return false
}

// isNull reports whether raw is missing or the JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// unmarshalField decodes raw into v, naming field in an error.
func unmarshalField(path, field string, raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return hfErr(path, field, "%v", err)
	}
	return nil
}

// hfModelJSON is the "model" of a tokenizer.json.
type hfModelJSON struct {
	Type                    *string         `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                json.RawMessage `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

// hfAddedJSON is an entry of added_tokens; pointers tell missing keys.
type hfAddedJSON struct {
	ID         *int64  `json:"id"`
	Content    *string `json:"content"`
	SingleWord bool    `json:"single_word"`
	LStrip     bool    `json:"lstrip"`
	RStrip     bool    `json:"rstrip"`
	Normalized *bool   `json:"normalized"`
	Special    bool    `json:"special"`
}

// component is the part of a normalizer, pre-tokenizer, post-processor or
// decoder that says what it is.
type component struct {
	Type *string `json:"type"`
}

// parseHF reads the tokenizer.json data that came from path.
func parseHF(path string, data []byte) (*HF, error) {
	top, err := topLevel(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	t := &HF{cache: map[string][]int32{}}
	if isNull(top["model"]) {
		return nil, hfErr(path, "model", "missing")
	}
	if err := t.parseModel(path, top["model"]); err != nil {
		return nil, err
	}
	if err := t.parseAdded(path, top["added_tokens"]); err != nil {
		return nil, err
	}
	if t.normalizers, err = parseNormalizer(path, "normalizer", top["normalizer"]); err != nil {
		return nil, err
	}
	if err := t.parsePreTokenizer(path, top["pre_tokenizer"]); err != nil {
		return nil, err
	}
	t.buildTries()
	if err := parseDecoder(path, "decoder", top["decoder"]); err != nil {
		return nil, err
	}
	if t.templPre, t.templPost, err = t.parsePostProcessor(path, "post_processor", top["post_processor"]); err != nil {
		return nil, err
	}
	t.file.normalizer = compact(top["normalizer"])
	t.file.preTokenizer = compact(top["pre_tokenizer"])
	t.file.postProcessor = compact(top["post_processor"])
	t.file.decoder = compact(top["decoder"])
	t.eot = -1
	for _, name := range []string{EndOfText, "<|end_of_text|>", "</s>", "<eos>"} {
		if id, ok := t.TokenID(name); ok {
			t.eot = id
			break
		}
	}
	if t.eot < 0 {
		return nil, hfErr(path, "added_tokens", "no end-of-text token: none of %s, <|end_of_text|>, </s>, <eos> is a token", EndOfText)
	}
	return t, nil
}

// compact returns raw without insignificant space, "null" if missing.
func compact(raw json.RawMessage) json.RawMessage {
	if isNull(raw) {
		return json.RawMessage("null")
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

func (t *HF) parseModel(path string, raw json.RawMessage) error {
	var m hfModelJSON
	if err := unmarshalField(path, "model", raw, &m); err != nil {
		return err
	}
	switch {
	case m.Type == nil && len(m.Merges) == 0:
		return hfErr(path, "model.type", "missing, and no merges: not a BPE model")
	case m.Type != nil && *m.Type != "BPE":
		return hfErr(path, "model.type", "%q is not supported (only a byte-level \"BPE\"; WordPiece, Unigram and WordLevel are not)", *m.Type)
	case m.Dropout != nil && *m.Dropout != 0:
		return hfErr(path, "model.dropout", "%v is not supported (only null)", *m.Dropout)
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "":
		return hfErr(path, "model.continuing_subword_prefix", "%q is not supported (only \"\")", *m.ContinuingSubwordPrefix)
	case m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return hfErr(path, "model.end_of_word_suffix", "%q is not supported (only \"\")", *m.EndOfWordSuffix)
	case m.ByteFallback:
		return hfErr(path, "model.byte_fallback", "true is not supported: byte fallback is for SentencePiece-style BPE, not byte-level BPE")
	case isNull(m.Vocab):
		return hfErr(path, "model.vocab", "missing")
	case isNull(m.Merges):
		return hfErr(path, "model.merges", "missing")
	}
	t.ignoreMerges = m.IgnoreMerges
	t.file.unkToken = compact(m.UnkToken)
	t.file.fuseUnk = m.FuseUnk

	var vocab map[string]int64
	if err := unmarshalField(path, "model.vocab", m.Vocab, &vocab); err != nil {
		return err
	}
	maxID := int64(-1)
	for tok, id := range vocab {
		if id < 0 || id >= 1<<31-1 {
			return hfErr(path, "model.vocab", "%q has id %d, out of range", tok, id)
		}
		maxID = max(maxID, id)
	}
	t.vocab = make([]string, maxID+1)
	t.known = make([]bool, maxID+1)
	t.wordIDs = make(map[string]int32, len(vocab))
	for tok, id := range vocab {
		if t.known[id] {
			a, b := min(tok, t.vocab[id]), max(tok, t.vocab[id])
			return hfErr(path, "model.vocab", "%q and %q both have id %d", a, b, id)
		}
		t.vocab[id], t.known[id] = tok, true
		if raw, ok := fromByteLevel(tok); ok && raw != "" {
			t.wordIDs[raw] = int32(id)
		}
	}
	t.file.modelVocab, t.file.inModel = slices.Clone(t.vocab), slices.Clone(t.known)
	for b := range 256 {
		id, ok := vocab[string(byteRune[b])]
		if !ok {
			return hfErr(path, "model.vocab", "no token for byte 0x%02x (%q): a byte-level BPE needs all 256", b, string(byteRune[b]))
		}
		t.byteIDs[b] = int32(id)
	}

	var merges []json.RawMessage
	if err := unmarshalField(path, "model.merges", m.Merges, &merges); err != nil {
		return err
	}
	t.ranks = make(map[uint64]hfMerge, len(merges))
	t.file.merges = make([][2]string, len(merges))
	for i, rawMerge := range merges {
		field := fmt.Sprintf("model.merges[%d]", i)
		var pair [2]string
		var s string
		var list []string
		switch {
		case json.Unmarshal(rawMerge, &s) == nil:
			parts := strings.Split(s, " ")
			if len(parts) != 2 {
				return hfErr(path, field, "%q is not two tokens separated by one space", s)
			}
			pair = [2]string{parts[0], parts[1]}
		case json.Unmarshal(rawMerge, &list) == nil:
			if len(list) != 2 {
				return hfErr(path, field, "%d tokens, want 2", len(list))
			}
			pair = [2]string{list[0], list[1]}
		default:
			return hfErr(path, field, "%s is neither \"a b\" nor [\"a\", \"b\"]", rawMerge)
		}
		var ids [2]int32
		for k, tok := range pair {
			id, ok := vocab[tok]
			if !ok {
				return hfErr(path, field, "%q is not in model.vocab", tok)
			}
			ids[k] = int32(id)
		}
		id, ok := vocab[pair[0]+pair[1]]
		if !ok {
			return hfErr(path, field, "the merged token %q is not in model.vocab", pair[0]+pair[1])
		}
		// As in Hugging Face's library, a pair merged twice keeps its last rank.
		t.ranks[pairKey(ids[0], ids[1])] = hfMerge{int32(i), int32(id)}
		t.file.merges[i] = pair
	}
	return nil
}

func (t *HF) parseAdded(path string, raw json.RawMessage) error {
	var list []hfAddedJSON
	if !isNull(raw) {
		if err := unmarshalField(path, "added_tokens", raw, &list); err != nil {
			return err
		}
	}
	byContent := map[string]int{}
	byID := map[int32]int{}
	for i, a := range list {
		field := fmt.Sprintf("added_tokens[%d]", i)
		switch {
		case a.ID == nil:
			return hfErr(path, field+".id", "missing")
		case a.Content == nil || *a.Content == "":
			return hfErr(path, field+".content", "missing or empty")
		case *a.ID < 0 || *a.ID >= 1<<31-1:
			return hfErr(path, field+".id", "%d is out of range", *a.ID)
		case a.SingleWord:
			return hfErr(path, field+".single_word", "true is not supported")
		}
		id := int32(*a.ID)
		if j, dup := byContent[*a.Content]; dup {
			return hfErr(path, field+".content", "%q is also added_tokens[%d]", *a.Content, j)
		}
		if j, dup := byID[id]; dup {
			return hfErr(path, field+".id", "%d is also added_tokens[%d]'s", id, j)
		}
		if int(id) < len(t.vocab) && t.known[id] && t.vocab[id] != *a.Content {
			return hfErr(path, field+".id", "%d is model.vocab's %q, not %q", id, t.vocab[id], *a.Content)
		}
		byContent[*a.Content], byID[id] = i, i
		normalized := !a.Special
		if a.Normalized != nil {
			normalized = *a.Normalized
		}
		t.added = append(t.added, HFAddedToken{
			ID: id, Content: *a.Content, LStrip: a.LStrip, RStrip: a.RStrip, Normalized: normalized, Special: a.Special,
		})
	}
	slices.SortStableFunc(t.added, func(a, b HFAddedToken) int { return int(a.ID) - int(b.ID) })
	for _, a := range t.added {
		for int(a.ID) >= len(t.vocab) {
			t.vocab = append(t.vocab, "")
			t.known = append(t.known, false)
		}
		t.vocab[a.ID], t.known[a.ID] = a.Content, true
	}
	return nil
}

// buildTries indexes the added tokens once the normalizer is known: the
// normalized ones are looked for as the normalizer writes them.
func (t *HF) buildTries() {
	t.rawTrie, t.normTrie = newTokenTrie(), newTokenTrie()
	t.rawIdx, t.normIdx = nil, nil
	for i, a := range t.added {
		if a.Normalized {
			content := a.Content
			for _, f := range t.normalizers {
				content = f.String(content)
			}
			t.normTrie.add(content, len(t.normIdx))
			t.normIdx = append(t.normIdx, i)
		} else {
			t.rawTrie.add(a.Content, len(t.rawIdx))
			t.rawIdx = append(t.rawIdx, i)
		}
	}
	t.decoded = make([]string, len(t.vocab))
	for id, tok := range t.vocab {
		t.decoded[id] = decodeToken(tok)
	}
}

func parseNormalizer(path, field string, raw json.RawMessage) ([]norm.Form, error) {
	if isNull(raw) {
		return nil, nil
	}
	var c struct {
		component
		Normalizers []json.RawMessage `json:"normalizers"`
	}
	if err := unmarshalField(path, field, raw, &c); err != nil {
		return nil, err
	}
	if c.Type == nil {
		return nil, hfErr(path, field+".type", "missing")
	}
	switch *c.Type {
	case "NFC":
		return []norm.Form{norm.NFC}, nil
	case "NFD":
		return []norm.Form{norm.NFD}, nil
	case "NFKC":
		return []norm.Form{norm.NFKC}, nil
	case "NFKD":
		return []norm.Form{norm.NFKD}, nil
	case "Sequence":
		var forms []norm.Form
		for i, sub := range c.Normalizers {
			f, err := parseNormalizer(path, fmt.Sprintf("%s.normalizers[%d]", field, i), sub)
			if err != nil {
				return nil, err
			}
			forms = append(forms, f...)
		}
		return forms, nil
	}
	return nil, hfErr(path, field+".type", "%q is not supported (only null, NFC, NFD, NFKC, NFKD and a Sequence of them)", *c.Type)
}

// byteLevelJSON is a ByteLevel pre-tokenizer, post-processor or decoder.
type byteLevelJSON struct {
	AddPrefixSpace *bool `json:"add_prefix_space"`
	UseRegex       *bool `json:"use_regex"`
}

func (t *HF) parsePreTokenizer(path string, raw json.RawMessage) error {
	if isNull(raw) {
		return hfErr(path, "pre_tokenizer", "null is not supported: a byte-level BPE needs a ByteLevel pre-tokenizer")
	}
	if err := t.parsePreStep(path, "pre_tokenizer", raw); err != nil {
		return err
	}
	last := len(t.steps) - 1
	if last < 0 || !t.steps[last].byteLevel {
		return hfErr(path, "pre_tokenizer", "no ByteLevel pre-tokenizer at the end: hiddenlab supports Split steps followed by one ByteLevel")
	}
	for _, st := range t.steps[:last] {
		if st.byteLevel {
			return hfErr(path, "pre_tokenizer", "a ByteLevel pre-tokenizer before the last step is not supported")
		}
	}
	return nil
}

func (t *HF) parsePreStep(path, field string, raw json.RawMessage) error {
	var c struct {
		component
		byteLevelJSON
		Pattern       *map[string]string `json:"pattern"`
		Behavior      *string            `json:"behavior"`
		Invert        bool               `json:"invert"`
		PreTokenizers []json.RawMessage  `json:"pretokenizers"`
	}
	if err := unmarshalField(path, field, raw, &c); err != nil {
		return err
	}
	if c.Type == nil {
		return hfErr(path, field+".type", "missing")
	}
	switch *c.Type {
	case "ByteLevel":
		if c.AddPrefixSpace == nil {
			return hfErr(path, field+".add_prefix_space", "missing")
		}
		st := preStep{addPrefixSpace: *c.AddPrefixSpace, byteLevel: true}
		if c.UseRegex == nil || *c.UseRegex {
			st.scan = chunkLen
		}
		t.steps = append(t.steps, st)
		return nil
	case "Split":
		if c.Pattern == nil {
			return hfErr(path, field+".pattern", "missing")
		}
		re, ok := (*c.Pattern)["Regex"]
		if !ok {
			return hfErr(path, field+".pattern", "%v is not supported (only {\"Regex\": ...})", *c.Pattern)
		}
		scan, ok := scanners[re]
		if !ok {
			return hfErr(path, field+".pattern.Regex", "unsupported regex %q (hiddenlab implements GPT-2's, Llama-3's and Qwen2's patterns)", re)
		}
		if c.Behavior == nil || *c.Behavior != "Isolated" {
			b := "missing"
			if c.Behavior != nil {
				b = fmt.Sprintf("%q", *c.Behavior)
			}
			return hfErr(path, field+".behavior", "%s is not supported (only \"Isolated\")", b)
		}
		if c.Invert {
			return hfErr(path, field+".invert", "true is not supported")
		}
		t.steps = append(t.steps, preStep{scan: scan})
		return nil
	case "Sequence":
		if len(c.PreTokenizers) == 0 {
			return hfErr(path, field+".pretokenizers", "missing or empty")
		}
		for i, sub := range c.PreTokenizers {
			if err := t.parsePreStep(path, fmt.Sprintf("%s.pretokenizers[%d]", field, i), sub); err != nil {
				return err
			}
		}
		return nil
	}
	return hfErr(path, field+".type", "%q is not supported (only ByteLevel, Split and Sequence)", *c.Type)
}

func parseDecoder(path, field string, raw json.RawMessage) error {
	if isNull(raw) {
		return hfErr(path, field, "null is not supported (only ByteLevel)")
	}
	var c component
	if err := unmarshalField(path, field, raw, &c); err != nil {
		return err
	}
	if c.Type == nil {
		return hfErr(path, field+".type", "missing")
	}
	if *c.Type != "ByteLevel" {
		return hfErr(path, field+".type", "%q is not supported (only ByteLevel)", *c.Type)
	}
	return nil
}

// parsePostProcessor returns the ids that a single sequence gets before and
// after its own.
func (t *HF) parsePostProcessor(path, field string, raw json.RawMessage) (pre, post []int32, err error) {
	if isNull(raw) {
		return nil, nil, nil
	}
	var c struct {
		component
		Processors    []json.RawMessage          `json:"processors"`
		Single        []map[string]templatePiece `json:"single"`
		SpecialTokens map[string]templateSpecial `json:"special_tokens"`
		Sep           *[2]json.RawMessage        `json:"sep"`
		Cls           *[2]json.RawMessage        `json:"cls"`
	}
	if err := unmarshalField(path, field, raw, &c); err != nil {
		return nil, nil, err
	}
	if c.Type == nil {
		return nil, nil, hfErr(path, field+".type", "missing")
	}
	switch *c.Type {
	case "ByteLevel":
		return nil, nil, nil
	case "Sequence":
		for i, sub := range c.Processors {
			p, q, err := t.parsePostProcessor(path, fmt.Sprintf("%s.processors[%d]", field, i), sub)
			if err != nil {
				return nil, nil, err
			}
			pre, post = append(slices.Clone(p), pre...), append(post, q...)
		}
		return pre, post, nil
	case "TemplateProcessing":
		seen := false
		for i, piece := range c.Single {
			f := fmt.Sprintf("%s.single[%d]", field, i)
			if s, ok := piece["Sequence"]; ok {
				if s.ID != "A" || seen {
					return nil, nil, hfErr(path, f, "sequence %q: a single-sequence template has one sequence, A", s.ID)
				}
				seen = true
				continue
			}
			s, ok := piece["SpecialToken"]
			if !ok {
				return nil, nil, hfErr(path, f, "neither SpecialToken nor Sequence")
			}
			sp, ok := c.SpecialTokens[s.ID]
			if !ok {
				return nil, nil, hfErr(path, f, "special token %q is not in %s.special_tokens", s.ID, field)
			}
			for _, id := range sp.IDs {
				if id < 0 || int(id) >= len(t.vocab) || !t.known[id] {
					return nil, nil, hfErr(path, field+".special_tokens", "%q has id %d, which no token has", s.ID, id)
				}
			}
			if seen {
				post = append(post, sp.IDs...)
			} else {
				pre = append(pre, sp.IDs...)
			}
		}
		if !seen {
			return nil, nil, hfErr(path, field+".single", "no Sequence A")
		}
		return pre, post, nil
	case "RobertaProcessing", "BertProcessing":
		ids := [2]int32{}
		for k, pair := range []*[2]json.RawMessage{c.Cls, c.Sep} {
			f := field + []string{".cls", ".sep"}[k]
			var id int32
			if pair == nil || json.Unmarshal(pair[1], &id) != nil || id < 0 || int(id) >= len(t.vocab) || !t.known[id] {
				return nil, nil, hfErr(path, f, "want [token, id] with an id that a token has")
			}
			ids[k] = id
		}
		return []int32{ids[0]}, []int32{ids[1]}, nil
	}
	return nil, nil, hfErr(path, field+".type", "%q is not supported (only ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing and a Sequence of them)", *c.Type)
}

// templatePiece is a SpecialToken or Sequence item of a template.
type templatePiece struct {
	ID string `json:"id"`
}

// templateSpecial is an entry of a TemplateProcessing's special_tokens.
type templateSpecial struct {
	IDs []int32 `json:"ids"`
}
