// Encode throughput of Hugging Face tokenizers (the Rust library, through its Node binding,
// npm package tokenizers@0.23.2) on the same clinical texts as the Go benchmarks
// (tokenize/bench_test.go, benchmarks/tokenize_test.go).
//
//   cd benchmarks/tokenize-compare && npm install && node bench.js [--rounds N] [families...]
//
// Two single-thread figures are printed per family:
//   batch-1T : encodeBatch over all texts with TOKENIZERS_PARALLELISM=false, i.e. the Rust loop
//              on one thread with no per-call JavaScript overhead (the fair "Rust" number);
//   await-1T : one awaited encode() per text (adds the binding's per-call cost).
// and one all-core figure (encodeBatch with Rayon on all cores), in a child process because the
// parallelism switch is read once.
// tokens/s is wall time; tokens/cpu-s divides by the process CPU time (user+sys), which is the
// figure to compare on a busy machine.
'use strict'
const fs = require('fs')
const path = require('path')
const { execFileSync } = require('child_process')

const root = path.resolve(__dirname, '..', '..')
const textDir = path.join(root, 'testdata', 'text')
const tokDir = path.join(root, 'testdata', 'tokenizers')

// Minimal RFC 4180 CSV parser (quoted fields, doubled quotes, newlines inside quotes).
function parseCSV(s) {
  const rows = []
  let row = []
  let field = ''
  let i = 0
  let quoted = false
  while (i < s.length) {
    const c = s[i]
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"'
          i += 2
          continue
        }
        quoted = false
        i++
        continue
      }
      field += c
      i++
      continue
    }
    if (c === '"') {
      quoted = true
      i++
    } else if (c === ',') {
      row.push(field)
      field = ''
      i++
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++
      row.push(field)
      rows.push(row)
      row = []
      field = ''
      i++
    } else {
      field += c
      i++
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field)
    rows.push(row)
  }
  return rows
}

// Same corpus as clinicalTexts in the Go benchmarks.
function clinicalTexts() {
  const rows = parseCSV(fs.readFileSync(path.join(textDir, 'iu_xray_reports.csv'), 'utf8'))
  const texts = []
  for (const r of rows.slice(1)) {
    const s = (r[6] + ' ' + r[7]).trim()
    if (s !== '') texts.push(s)
  }
  for (const line of fs.readFileSync(path.join(textDir, 'obi_notes.jsonl'), 'utf8').split('\n')) {
    if (line.trim() === '') continue
    texts.push(JSON.parse(line).text)
  }
  return texts
}

function cpuSeconds() {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

async function measure(tok, texts, mode, rounds) {
  let tokens = 0
  const run = async () => {
    let n = 0
    if (mode === 'await') {
      for (const t of texts) n += (await tok.encode(t)).getLength()
    } else {
      for (const e of await tok.encodeBatch(texts)) n += e.getLength()
    }
    return n
  }
  await run() // warm-up (BPE caches, page faults)
  const c0 = cpuSeconds()
  const t0 = process.hrtime.bigint()
  for (let r = 0; r < rounds; r++) tokens += await run()
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = cpuSeconds() - c0
  return { tokens, wall, cpu }
}

function fmt(x) {
  return Math.round(x).toLocaleString('en-US')
}

async function main() {
  const args = process.argv.slice(2)
  let rounds = 3
  const ri = args.indexOf('--rounds')
  if (ri >= 0) {
    rounds = parseInt(args[ri + 1], 10)
    args.splice(ri, 2)
  }
  const child = args.indexOf('--child')
  const isChild = child >= 0
  if (isChild) args.splice(child, 1)
  const families = args.length ? args : ['bert-base-uncased', 'bert-base-cased', 'roberta-base', 'qwen2', 'xlnet-base-cased']
  const { Tokenizer } = require('tokenizers')
  const texts = clinicalTexts()
  const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t), 0)
  if (!isChild) {
    console.log(`corpus: ${texts.length} texts, ${bytes} bytes; rounds: ${rounds}`)
  }
  for (const fam of families) {
    const tok = Tokenizer.fromFile(path.join(tokDir, fam, 'tokenizer.json'))
    const modes = isChild ? ['batch'] : ['batch', 'await']
    for (const mode of modes) {
      const m = await measure(tok, texts, mode, rounds)
      const label = isChild ? 'batch-all' : mode + '-1T'
      console.log(
        `${fam.padEnd(18)} ${label.padEnd(9)} ${fmt(m.tokens / m.wall).padStart(12)} tokens/s ` +
          `${fmt(m.tokens / m.cpu).padStart(12)} tokens/cpu-s ${(bytes * rounds / m.wall / 1e6).toFixed(2)} MB/s`,
      )
    }
    if (!isChild) {
      const out = execFileSync(process.execPath, [__filename, '--child', '--rounds', String(rounds), fam], {
        env: { ...process.env, TOKENIZERS_PARALLELISM: 'true' },
        encoding: 'utf8',
      })
      process.stdout.write(out)
    }
  }
}

if (!process.env.TOKENIZERS_PARALLELISM) {
  // Single-thread figures: set before the binding loads.
  process.env.TOKENIZERS_PARALLELISM = 'false'
}
main().catch((e) => {
  console.error(e)
  process.exit(1)
})
