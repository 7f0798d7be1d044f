// The npm `ollama` client (ollama-js) driven against a live server through its public API.
// Usage: node cases.mjs '{"url": "...", "model": "...", "embedModel": "...", "numPredict": 8}'
// Prints one JSON object per case on its own line:
//   {"case", "ok", "skip", "error": {"name", "message", "status_code"}, "data", "warnings", "seconds"}
// The Python side (compat/js_client.py) judges `data` with the same checks as the other clients.
import { Ollama } from 'ollama'

const cfg = JSON.parse(process.argv[2] ?? '{}')
const ollama = new Ollama({ host: cfg.url })
const model = cfg.model
const unknown = 'no-such-model'
const options = { num_predict: cfg.numPredict ?? 8, temperature: 0, seed: 1 }
const scratch = (what) => `compat-js-${process.pid}-${what}`
const question = [{ role: 'user', content: 'Why is the sky blue?' }]

// ollama-js skips a stream line it cannot parse with console.warn("invalid json: ", line):
// a server that writes one would go unnoticed, so every warning is recorded with the case.
let warnings = []
console.warn = (...args) => { warnings.push(args.map(String).join(' ')) }

class Skip extends Error {}

const collect = async (iterator) => {
  const chunks = []
  for await (const chunk of iterator) chunks.push(chunk)
  return chunks
}

// The error a call raised, as data: the checks want its class, message and status.
const failure = async (call) => {
  try {
    await call()
  } catch (err) {
    return { name: err.name, message: err.error ?? err.message, status_code: err.status_code ?? null }
  }
  return null
}

const cases = {
  version: () => ollama.version(),
  list: () => ollama.list(),
  show: () => ollama.show({ model }),
  generate: () => ollama.generate({ model, prompt: 'Why is the sky blue?', options }),
  'generate-stream': async () =>
    collect(await ollama.generate({ model, prompt: 'Why is the sky blue?', options, stream: true })),
  chat: () => ollama.chat({ model, messages: question, options }),
  'chat-stream': async () => collect(await ollama.chat({ model, messages: question, options, stream: true })),
  ps: () => ollama.ps(),
  'keep-alive-string': () => ollama.generate({ model, prompt: 'Hi', keep_alive: '10m', options: { ...options, num_predict: 1 } }),
  'format-json': () =>
    ollama.generate({
      model, prompt: 'Reply with the JSON object {"answer": true} if the sky is blue.', format: 'json',
      options: { ...options, num_predict: 32 },
    }),
  'format-schema-chat': () =>
    ollama.chat({
      model, messages: [{ role: 'user', content: 'Is the sky blue?' }], options: { ...options, num_predict: 32 },
      format: { type: 'object', properties: { answer: { type: 'boolean' } }, required: ['answer'] },
    }),
  'tools-unsupported-400': () =>
    failure(() => ollama.chat({
      model, messages: [{ role: 'user', content: 'Weather in Paris?' }], options,
      tools: [{
        type: 'function',
        function: {
          name: 'get_weather', description: 'Get the weather in a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      }],
    })),
  'abort-stream': async () => {
    const client = new Ollama({ host: cfg.url })
    const stream = await client.chat({ model, messages: question, options: { ...options, num_predict: 64 }, stream: true })
    const seen = []
    const err = await failure(async () => {
      for await (const chunk of stream) {
        seen.push(chunk)
        client.abort()
      }
    })
    const after = await ollama.generate({ model, prompt: 'Hi', options: { ...options, num_predict: 1 } })
    return { chunks: seen.length, error: err, after }
  },
  embed: async () => {
    if (!cfg.embedModel) throw new Skip('no --embed-model given')
    return ollama.embed({ model: cfg.embedModel, input: ['Why is the sky blue?', 'Hello'] })
  },
  embeddings: async () => {
    if (!cfg.embedModel) throw new Skip('no --embed-model given')
    return ollama.embeddings({ model: cfg.embedModel, prompt: 'Why is the sky blue?' })
  },
  'copy-delete': async () => {
    const name = scratch('copy')
    const copied = await ollama.copy({ source: model, destination: name })
    const listed = (await ollama.list()).models.map((m) => m.model)
    const deleted = await ollama.delete({ model: name })
    const gone = await failure(() => ollama.show({ model: name }))
    return { copied, listed, name, deleted, gone }
  },
  'create-stream': async () => {
    const name = scratch('created')
    try {
      return await collect(await ollama.create({ model: name, from: model, system: 'You are terse.', stream: true }))
    } finally {
      await failure(() => ollama.delete({ model: name }))
    }
  },
  'pull-unknown': () => failure(() => ollama.pull({ model: unknown })),
  'pull-unknown-stream': () => failure(async () => collect(await ollama.pull({ model: unknown, stream: true }))),
  'error-generate-unknown-model': () => failure(() => ollama.generate({ model: unknown, prompt: 'hi' })),
  'error-chat-stream-unknown-model': () =>
    failure(async () => collect(await ollama.chat({ model: unknown, messages: question, stream: true }))),
  'error-show-unknown-model': () => failure(() => ollama.show({ model: unknown })),
  'error-delete-unknown-model': () => failure(() => ollama.delete({ model: unknown })),
}

const only = cfg.cases ? new Set(cfg.cases) : null
for (const [name, run] of Object.entries(cases)) {
  if (only && !only.has(name)) continue
  warnings = []
  const start = performance.now()
  const record = { case: name, ok: false, skip: null, error: null, data: null }
  try {
    record.data = (await run()) ?? null
    record.ok = true
  } catch (err) {
    if (err instanceof Skip) record.skip = err.message
    else record.error = { name: err.name, message: err.error ?? err.message, status_code: err.status_code ?? null }
  }
  record.warnings = warnings
  record.seconds = (performance.now() - start) / 1000
  process.stdout.write(JSON.stringify(record) + '\n')
}
