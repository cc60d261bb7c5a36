package tokenize

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
)

// hfOut is what SaveHF writes.
type hfOut struct {
	added                                            []HFAddedToken
	normalizer, preTokenizer, postProcessor, decoder json.RawMessage
	unkToken                                         json.RawMessage
	fuseUnk, ignoreMerges                            bool
	vocab                                            []string // id -> model token
	inModel                                          []bool   // id -> whether the model's vocab has it
	merges                                           [][2]string
}

// GPT-2's components, which SaveHF gives a BPE or Byte.
var (
	gpt2PreTokenizer  = json.RawMessage(`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`)
	gpt2PostProcessor = json.RawMessage(`{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true}`)
	gpt2Decoder       = json.RawMessage(`{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`)
)

// SaveHF writes tok to path as a Hugging Face tokenizer.json (replacing the
// file atomically), which Hugging Face's tokenizers library, transformers'
// PreTrainedTokenizerFast(tokenizer_file=...) and Load read.
//
// An *HF is written back as it was read: the same vocabulary, merges (as
// "a b" strings, or [a, b] lists if a token has a space), added tokens and
// components, so it encodes the same; truncation and padding, which HF
// ignores, are written as null.
//
// A *BPE becomes GPT-2's pipeline with its own vocabulary: ids 0..255 are
// the bytes spelled in GPT-2's byte-to-unicode alphabet, id 256 is the added
// special token <|endoftext|>, and merge i, of rank i, makes id 257+i; the
// pre-tokenizer is ByteLevel with GPT-2's pattern, which is the pattern
// hiddenlab's BPE splits text with. Hugging Face then encodes any valid
// UTF-8 text to the same ids as the BPE (the golden tests check this with
// Hugging Face's own library). Hugging Face's vocabulary maps each token
// string to one id, so a BPE in which two merges make the same bytes (say
// (a, bc) and (ab, c)) cannot be written, and SaveHF says which ids clash.
// Byte is written as a BPE without merges.
func SaveHF(path string, tok Tokenizer) error {
	var out *hfOut
	var err error
	switch t := tok.(type) {
	case *HF:
		out = t.hfOut()
	case *BPE:
		out, err = t.hfOut()
	case Byte:
		out, err = newBPE(nil).hfOut()
	default:
		return fmt.Errorf("tokenizer %s: cannot save a %T as a Hugging Face tokenizer.json", path, tok)
	}
	if err != nil {
		return fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return atomicio.Write(path, 0o644, out.write)
}

func (t *HF) hfOut() *hfOut {
	f := t.file
	return &hfOut{
		added: t.added, normalizer: f.normalizer, preTokenizer: f.preTokenizer, postProcessor: f.postProcessor,
		decoder: f.decoder, unkToken: f.unkToken, fuseUnk: f.fuseUnk, ignoreMerges: t.ignoreMerges,
		vocab: f.modelVocab, inModel: f.inModel, merges: f.merges,
	}
}

func (t *BPE) hfOut() (*hfOut, error) {
	out := &hfOut{
		added:        []HFAddedToken{{ID: eotID, Content: EndOfText, Special: true}},
		normalizer:   json.RawMessage("null"),
		preTokenizer: gpt2PreTokenizer, postProcessor: gpt2PostProcessor, decoder: gpt2Decoder,
		unkToken: json.RawMessage("null"),
		vocab:    make([]string, len(t.tokens)),
		inModel:  make([]bool, len(t.tokens)),
		merges:   make([][2]string, len(t.merges)),
	}
	seen := make(map[string]int, len(t.tokens))
	for id, tok := range t.tokens {
		s := EndOfText
		if id != eotID {
			s = byteLevel(tok)
		}
		if j, dup := seen[s]; dup {
			return nil, fmt.Errorf("cannot write as Hugging Face's BPE: ids %d and %d both stand for %q, and a tokenizer.json maps each token to one id", j, id, tok)
		}
		seen[s] = id
		out.vocab[id], out.inModel[id] = s, true
	}
	for i, m := range t.merges {
		out.merges[i] = [2]string{out.vocab[m[0]], out.vocab[m[1]]}
	}
	return out, nil
}

// jsonString returns s as a JSON string, without escaping <, > and &.
func jsonString(s string) string {
	plain := utf8.ValidString(s)
	for i := 0; plain && i < len(s); i++ {
		c := s[i]
		plain = c >= 0x20 && c != '"' && c != '\\' && c != 0xE2 // U+2028 and U+2029 start with 0xE2
	}
	if plain {
		return `"` + s + `"`
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// write writes the tokenizer.json with one vocabulary entry and one merge
// per line.
func (o *hfOut) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	for i, a := range o.added {
		if i > 0 {
			bw.WriteByte(',')
		}
		fmt.Fprintf(bw, "\n    {\"id\": %d, \"content\": %s, \"single_word\": %t, \"lstrip\": %t, \"rstrip\": %t, \"normalized\": %t, \"special\": %t}",
			a.ID, jsonString(a.Content), a.SingleWord, a.LStrip, a.RStrip, a.Normalized, a.Special)
	}
	if len(o.added) > 0 {
		bw.WriteString("\n  ")
	}
	fmt.Fprintf(bw, "],\n  \"normalizer\": %s,\n  \"pre_tokenizer\": %s,\n  \"post_processor\": %s,\n  \"decoder\": %s,\n",
		o.normalizer, o.preTokenizer, o.postProcessor, o.decoder)
	fmt.Fprintf(bw, "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": %s,\n"+
		"    \"continuing_subword_prefix\": \"\",\n    \"end_of_word_suffix\": \"\",\n    \"fuse_unk\": %t,\n"+
		"    \"byte_fallback\": false,\n    \"ignore_merges\": %t,\n    \"vocab\": {",
		o.unkToken, o.fuseUnk, o.ignoreMerges)
	first := true
	for id, tok := range o.vocab {
		if !o.inModel[id] {
			continue
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		fmt.Fprintf(bw, "\n      %s: %d", jsonString(tok), id)
	}
	bw.WriteString("\n    },\n    \"merges\": [")
	lists := false // [a, b] lists if a token has a space, else "a b"
	for _, m := range o.merges {
		if bytes.IndexByte([]byte(m[0]+m[1]), ' ') >= 0 {
			lists = true
			break
		}
	}
	for i, m := range o.merges {
		if i > 0 {
			bw.WriteByte(',')
		}
		if lists {
			fmt.Fprintf(bw, "\n      [%s, %s]", jsonString(m[0]), jsonString(m[1]))
		} else {
			fmt.Fprintf(bw, "\n      %s", jsonString(m[0]+" "+m[1]))
		}
	}
	bw.WriteString("\n    ]\n  }\n}\n")
	return bw.Flush()
}

// SaveHFConfig writes a minimal transformers tokenizer_config.json for the
// tokenizer.json that SaveHF writes beside it: PreTrainedTokenizerFast with
// the EOT token as bos_token and eos_token, and model_max_length when it is
// positive. transformers' AutoTokenizer.from_pretrained reads the folder.
func SaveHFConfig(path string, tok Tokenizer, modelMaxLength int) error {
	eot := EndOfText
	if h, ok := tok.(*HF); ok {
		eot, _ = h.Token(h.EOT())
	}
	var b bytes.Buffer
	b.WriteString("{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n")
	if modelMaxLength > 0 {
		fmt.Fprintf(&b, "  \"model_max_length\": %d,\n", modelMaxLength)
	}
	fmt.Fprintf(&b, "  \"bos_token\": %s,\n  \"eos_token\": %s,\n  \"clean_up_tokenization_spaces\": false\n}\n",
		jsonString(eot), jsonString(eot))
	return atomicio.WriteFile(path, b.Bytes(), 0o644)
}
