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
// The recorded corpus streams; the hand-written `hand-*` fault cases are beyond this oracle.
const outputs = (direction) =>
  readdirSync(join(STREAMS, direction)).filter((n) => n.endsWith('.out.sse') && !n.startsWith('hand-')).sort();
const FINISH = { end_turn: 'stop', stop_sequence: 'stop', pause_turn: 'stop', max_tokens: 'length', tool_use: 'tool_calls', refusal: 'content_filter' };
const STOP = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', function_call: 'tool_use', content_filter: 'refusal' };

function events(text) {
  return text.replace(/\r\n/g, '\n').split('\n\n').map((block) => {
    const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
    return data.length ? data.join('\n') : null;
  }).filter((d) => d !== null);
}

function fromAnthropic(text) {
  const out = { text: '', tools: [], stop: null, failed: false, complete: false };
  const blocks = {};
  for (const data of events(text)) {
    const event = JSON.parse(data);
    if (event.type === 'error') out.failed = true;
    if (event.type === 'content_block_start') {
      blocks[event.index] = { ...event.content_block, json: '' };
      if (event.content_block.type === 'tool_use') out.tools.push(blocks[event.index]);
    }
    if (event.type === 'content_block_delta') {
      if (event.delta.type === 'text_delta') out.text += event.delta.text;
      if (event.delta.type === 'input_json_delta') blocks[event.index].json += event.delta.partial_json;
    }
    if (event.type === 'message_delta') out.stop = event.delta.stop_reason;
    if (event.type === 'message_stop') out.complete = true;
  }
  out.tools = out.tools.map((t) => ({ id: t.id, name: t.name, input: JSON.parse(t.json || '{}') }));
  return out;
}

function fromOpenAI(text) {
  const out = { text: '', tools: [], stop: null, failed: false, complete: false };
  const tools = [];
  for (const data of events(text)) {
    if (data.trim() === '[DONE]') { out.complete = true; continue; }
    const chunk = JSON.parse(data);
    if (chunk.error) { out.failed = true; continue; }
    for (const choice of chunk.choices ?? []) {
      if ((choice.index ?? 0) !== 0) continue;
      out.text += choice.delta?.content ?? '';
      for (const call of choice.delta?.tool_calls ?? []) {
        tools[call.index] ??= { id: null, name: '', json: '' };
        tools[call.index].id = call.id ?? tools[call.index].id;
        tools[call.index].name += call.function?.name ?? '';
        tools[call.index].json += call.function?.arguments ?? '';
      }
      if (choice.finish_reason) out.stop = choice.finish_reason;
    }
  }
  out.tools = tools.map((t) => ({ id: t.id, name: t.name, input: JSON.parse(t.json || '{}') }));
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
      const expected = fromAnthropic(source);
      const client = new OpenAI({ baseURL: `${base}/anthropic-to-openai/${name}/v1`, apiKey: 'golden', maxRetries: 0 });
      const run = client.chat.completions.stream({ model: 'golden', messages: [{ role: 'user', content: 'replay' }] }).finalChatCompletion();
      if (expected.failed || !expected.complete) {
        await assert.rejects(run);
        return;
      }
      const { choices: [choice] } = await run;
      assert.equal(choice.message.content ?? '', expected.text);
      assert.deepEqual((choice.message.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, input: JSON.parse(c.function.arguments || '{}') })), expected.tools);
      assert.equal(choice.finish_reason, FINISH[expected.stop]);
    });
  }
});

describe('Anthropic streams through MessageStream', () => {
  for (const name of outputs('openai-to-anthropic')) {
    test(name, async () => {
      const source = readFileSync(join(STREAMS, 'openai-to-anthropic', name.replace('.out.sse', '.in.sse')), 'utf8');
      const expected = fromOpenAI(source);
      const client = new Anthropic({ baseURL: `${base}/openai-to-anthropic/${name}`, apiKey: 'golden', maxRetries: 0 });
      const run = client.messages.stream({ model: 'golden', max_tokens: 1024, messages: [{ role: 'user', content: 'replay' }] }).finalMessage();
      if (expected.failed || !expected.complete) {
        await assert.rejects(run);
        return;
      }
      const message = await run;
      assert.equal(message.content.filter((b) => b.type === 'text').map((b) => b.text).join(''), expected.text);
      assert.deepEqual(message.content.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, name: b.name, input: b.input })), expected.tools);
      assert.equal(message.stop_reason, STOP[expected.stop]);
    });
  }
});
