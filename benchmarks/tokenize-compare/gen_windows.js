// Generates tokenize/testdata/windows.jsonl: truncation with overflowing windows and stride,
// pairs and padding, encoded by Hugging Face's Rust tokenizers (npm tokenizers@0.23.2) from
// the testdata tokenizer.json files. tokenize's TestWindowsReference checks the Go encodings
// against it, so the window semantics are verified against the library itself.
//
// tokenizers 0.23.1 and 0.23.2 stop tokenizing truncated input once max_length tokens
// exist (huggingface/tokenizers#2091, fix pending in #2098), which empties or shortens
// Encoding.overflowing. Each record therefore also carries `content_windows`: the same text
// encoded without special tokens and without truncation, then cut by the library's own
// Encoding.truncate(budget, stride, direction) — the window semantics of 0.22.2 and earlier,
// which clinfer keeps (a tagger must see every token).
//
//   cd benchmarks/tokenize-compare && npm install && node gen_windows.js
'use strict'
const fs = require('fs')
const path = require('path')
const { Tokenizer } = require('tokenizers')

const root = path.resolve(__dirname, '..', '..')
const tokDir = path.join(root, 'testdata', 'tokenizers')
const out = path.join(root, 'tokenize', 'testdata', 'windows.jsonl')

const texts = [
  'The cardiac silhouette and mediastinum size are within normal limits. There is no pulmonary edema. There is no focal consolidation.',
  'Patient John Smith (MRN: 00123456) was seen on 03/14/2019 at 10:30 AM. Café résumé — 患者主诉胸痛三天 😀 ok.',
]
const pairs = [['No acute cardiopulmonary process.', 'Stable 4 mm RUL nodule; f/u CT in 12 months recommended.']]
// Small budgets make many windows. Pair budgets stay large enough for every sequence's share
// to exceed the stride: the Rust library panics (aborting the process) otherwise, where the Go
// code returns an error (tested separately).
const configs = [
  { maxLength: 8, stride: 0 },
  { maxLength: 10, stride: 2 },
  { maxLength: 16, stride: 4 },
  { maxLength: 12, stride: 3, direction: 'Left' },
  { maxLength: 24, stride: 2, strategy: 'LongestFirst', pairOnly: true },
  { maxLength: 20, stride: 1, strategy: 'OnlySecond', pairOnly: true },
  { maxLength: 30, stride: 3, strategy: 'OnlyFirst', pairOnly: true },
]

function dump(e) {
  return {
    ids: e.getIds(),
    type_ids: e.getTypeIds(),
    tokens: e.getTokens(),
    offsets: e.getOffsets(),
    special_tokens_mask: e.getSpecialTokensMask(),
    attention_mask: e.getAttentionMask(),
    word_ids: e.getWordIds().map((w) => (w === undefined ? null : w)),
  }
}

async function main() {
  const lines = []
  for (const fam of ['bert-base-uncased', 'roberta-base', 'xlnet-base-cased', 'qwen2']) {
    const tok = Tokenizer.fromFile(path.join(tokDir, fam, 'tokenizer.json'))
    let n = 0
    for (const cfg of configs) {
      const inputs = cfg.pairOnly ? pairs : texts.map((t) => [t, null])
      for (const [a, b] of inputs) {
        for (const pad of [null, { maxLength: 20, padToMultipleOf: 8, direction: 'left', padId: 7, padToken: '[P]' }]) {
          tok.setTruncation(cfg.maxLength, { stride: cfg.stride, strategy: cfg.strategy || 'LongestFirst', direction: (cfg.direction || 'Right').toLowerCase() })
          if (pad) tok.setPadding(pad)
          else tok.disablePadding()
          let enc
          try {
            enc = await tok.encode(a, b)
          } catch (err) {
            continue
          }
          const windows = [dump(enc)].concat(enc.getOverflowing().map(dump))
          let contentWindows = null
          if (b === null) {
            tok.disableTruncation()
            tok.disablePadding()
            const special = (await tok.encode('', null)).getLength()
            const full = await tok.encode(a, null, { addSpecialTokens: false })
            full.truncate(cfg.maxLength - special, cfg.stride, (cfg.direction || 'Right').toLowerCase())
            contentWindows = [dump(full)].concat(full.getOverflowing().map(dump))
          }
          lines.push(
            JSON.stringify({
              id: `${fam}-${n++}`,
              family: fam,
              text: a,
              pair: b,
              truncation: { max_length: cfg.maxLength, stride: cfg.stride, strategy: cfg.strategy || 'LongestFirst', direction: cfg.direction || 'Right' },
              padding: pad,
              windows,
              content_windows: contentWindows,
            }),
          )
        }
      }
    }
  }
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, lines.join('\n') + '\n')
  console.log(`wrote ${lines.length} records to ${out}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
