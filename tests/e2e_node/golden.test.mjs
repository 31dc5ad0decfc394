// Every converted stream in testdata/stream through the Node SDKs' stream accumulators
// (ChatCompletionStream for OpenAI streams, MessageStream for Anthropic ones): accepted, with
// the text, tool calls and stop reason the source transcript implies (computed here, from
// the `.in.sse`, not from a2o's output). Mirrors tests/e2e/test_golden_streams.py.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { REPO } from './harness.mjs';

const STREAMS = join(REPO, 'testdata', 'stream');
// Every converted stream: the recorded corpus and the hand-written faults and edge cases.
const outputs = (direction) =>
  readdirSync(join(STREAMS, direction)).filter((n) => n.endsWith('.out.sse')).sort();
const FINISH = { end_turn: 'stop', stop_sequence: 'stop', pause_turn: 'stop', max_tokens: 'length', tool_use: 'tool_calls', refusal: 'content_filter' };
const STOP = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', function_call: 'tool_use', content_filter: 'refusal' };

// Per WHATWG, an event the input cuts off before its blank line is never dispatched.
function events(text) {
  const normalized = text.replace(/\r\n/g, '\n');
  const whole = normalized.slice(0, normalized.lastIndexOf('\n\n') + 1);
  return whole.split('\n\n').map((block) => {
    const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
    return data.length ? data.join('\n') : null;
  }).filter((d) => d !== null);
}

// JSON, or undefined when a broken stream cut it off (such a stream must be rejected anyway).
function parse(text) {
  try { return JSON.parse(text); } catch { return undefined; }
}

const VALID_TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

// The client's name for a tool the upstream saw as `upstreamName`: names the upstream would
// refuse travel shortened (invalid characters replaced, a suffix added).
function clientToolName(upstreamName, request) {
  const names = (request?.tools ?? []).map((t) => (t.function ?? t).name);
  if (!names.length || names.includes(upstreamName)) return upstreamName;
  const stem = upstreamName.slice(0, upstreamName.lastIndexOf('_'));
  const matches = names.filter((n) => !VALID_TOOL_NAME.test(n) && n.replace(/[^a-zA-Z0-9_-]/g, '_').startsWith(stem));
  assert.equal(matches.length, 1, `${upstreamName} in ${names}`);
  return matches[0];
}

function clientRequest(direction, name) {
  const options = parse(readIfPresent(join(STREAMS, direction, name.replace('.out.sse', '.options.json'))) ?? '{}') ?? {};
  return options.request ? JSON.parse(readFileSync(join(STREAMS, direction, options.request), 'utf8')) : null;
}

function readIfPresent(path) {
  try { return readFileSync(path, 'utf8'); } catch { return null; }
}

// Expected calls with no id (null) or no name ('') accept any made-up, non-empty one.
function assertCalls(actual, expected) {
  assert.equal(actual.length, expected.length, JSON.stringify(actual));
  actual.forEach((call, i) => {
    const want = expected[i];
    if (want.id === null) assert.ok(call.id); else assert.equal(call.id, want.id);
    if (want.name === '') assert.ok(call.name); else assert.equal(call.name, want.name);
    assert.deepEqual(call.input, want.input);
  });
}

function fromAnthropic(text, request) {
  const out = { text: '', tools: [], stop: null, failed: false, complete: false };
  const blocks = {};
  for (const data of events(text)) {
    const event = parse(data);
    if (event === undefined) { out.failed = true; break; }
    if (event.type === 'error') out.failed = true;
    if (event.type === 'content_block_start') {
      blocks[event.index] = { ...event.content_block, json: '' };
      if (event.content_block.type === 'tool_use') blocks[event.index].name = clientToolName(event.content_block.name, request);
      if (event.content_block.type === 'tool_use') out.tools.push(blocks[event.index]);
    }
    if (event.type === 'content_block_delta') {
      if (event.delta.type === 'text_delta') out.text += event.delta.text;
      if (event.delta.type === 'input_json_delta' && blocks[event.index]) blocks[event.index].json += event.delta.partial_json;
    }
    if (event.type === 'message_delta') out.stop = event.delta.stop_reason;
    if (event.type === 'message_stop') out.complete = true;
  }
  // Arguments that never streamed were given whole in the start.
  out.tools = out.tools.map((t) => ({ id: t.id, name: t.name, input: t.json ? parse(t.json) : (t.input ?? {}) }));
  return out;
}

// A stream that reached its finish_reason is complete even without [DONE]. Refusal text is
// text (Anthropic has no refusal field) and makes the stop `refusal`; a vLLM-style
// `stop_reason` naming one of the client's stop sequences makes it `stop_sequence`; a new id
// under the index of a call whose arguments are whole JSON is another call.
function fromOpenAI(text, request) {
  const out = { text: '', tools: [], stop: null, failed: false, complete: false, refused: false, stopSequence: false };
  const tools = [];
  const latest = {};
  for (const data of events(text)) {
    if (data.trim() === '[DONE]') { out.complete = true; continue; }
    const chunk = parse(data);
    if (chunk === undefined) { out.failed = true; break; }
    if (chunk.error) { out.failed = true; continue; }
    for (const choice of chunk.choices ?? []) {
      if ((choice.index ?? 0) !== 0) continue;
      out.text += (choice.delta?.content ?? '') + (choice.delta?.refusal ?? '');
      out.refused ||= Boolean(choice.delta?.refusal);
      for (const call of choice.delta?.tool_calls ?? []) {
        let tool = tools[latest[call.index]];
        if (!tool || (call.id && tool.id && call.id !== tool.id && parse(tool.json) !== undefined)) {
          latest[call.index] = tools.length;
          tool = { id: null, name: '', json: '' };
          tools.push(tool);
        }
        tool.id = call.id ?? tool.id;
        tool.name += call.function?.name ?? '';
        tool.json += call.function?.arguments ?? '';
      }
      if (choice.finish_reason) {
        out.stop = choice.finish_reason;
        out.complete = true;
        out.stopSequence = (request?.stop_sequences ?? []).includes(choice.stop_reason ?? choice.matched_stop);
      }
    }
  }
  out.tools = tools.map((t) => ({ id: t.id, name: t.name ? clientToolName(t.name, request) : '', input: parse(t.json || '{}') }));
  return out;
}

let server;
let base;
before(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const relative = decodeURIComponent(request.url.split('/v1/')[0]).replace(/^\/+/, '');
      if (relative.includes('..')) { response.writeHead(404).end(); return; }
      let body;
      try { body = readFileSync(join(STREAMS, relative)); } catch { response.writeHead(404).end(); return; }
      response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', connection: 'close' });
      response.end(body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => new Promise((r) => server.close(r)));

describe('OpenAI streams through ChatCompletionStream', () => {
  for (const name of outputs('anthropic-to-openai')) {
    test(name, async () => {
      const source = readFileSync(join(STREAMS, 'anthropic-to-openai', name.replace('.out.sse', '.in.sse')), 'utf8');
      const expected = fromAnthropic(source, clientRequest('anthropic-to-openai', name));
      const client = new OpenAI({ baseURL: `${base}/anthropic-to-openai/${name}/v1`, apiKey: 'golden', maxRetries: 0 });
      const run = client.chat.completions.stream({ model: 'golden', messages: [{ role: 'user', content: 'replay' }] }).finalChatCompletion();
      if (expected.failed || !expected.complete) {
        await assert.rejects(run);
        return;
      }
      const { choices: [choice] } = await run;
      assert.equal(choice.message.content ?? '', expected.text);
      assertCalls((choice.message.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, input: JSON.parse(c.function.arguments || '{}') })), expected.tools);
      assert.equal(choice.finish_reason, FINISH[expected.stop]);
    });
  }
});

describe('Anthropic streams through MessageStream', () => {
  for (const name of outputs('openai-to-anthropic')) {
    test(name, async () => {
      const source = readFileSync(join(STREAMS, 'openai-to-anthropic', name.replace('.out.sse', '.in.sse')), 'utf8');
      const expected = fromOpenAI(source, clientRequest('openai-to-anthropic', name));
      const client = new Anthropic({ baseURL: `${base}/openai-to-anthropic/${name}`, apiKey: 'golden', maxRetries: 0 });
      const run = client.messages.stream({ model: 'golden', max_tokens: 1024, messages: [{ role: 'user', content: 'replay' }] }).finalMessage();
      if (expected.failed || !expected.complete) {
        await assert.rejects(run);
        return;
      }
      const message = await run;
      assert.equal(message.content.filter((b) => b.type === 'text').map((b) => b.text).join(''), expected.text);
      assertCalls(message.content.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, name: b.name, input: b.input })), expected.tools);
      let stop = STOP[expected.stop];
      if (expected.stopSequence) stop = 'stop_sequence';
      else if (expected.refused && !expected.tools.length) stop = 'refusal';
      // An upstream that finishes a turn with calls as "stop" still wants the results.
      else if (stop === 'end_turn' && expected.tools.length) stop = 'tool_use';
      assert.equal(message.stop_reason, stop);
    });
  }
});
