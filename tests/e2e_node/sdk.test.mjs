// The official Node SDKs (`openai`, `@anthropic-ai/sdk`) and their stream helpers
// (ChatCompletionStream, MessageStream) against a2o serve, on both upstream dialects.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startAll } from './harness.mjs';

const ANSWER = 'Hello from the mock upstream.';
const THINKING = 'Let me think about this.';
const SIGNATURE = 'mock-signature-0123456789';
const TOOL_ARGS = [{ city: 'Paris' }, { city: 'Tokyo' }, { city: 'Lima' }];
const MODEL = 'e2e-model';
const SCHEMA = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
const OPENAI_TOOLS = ['get_weather', 'get_time'].map((name) => ({ type: 'function', function: { name, parameters: SCHEMA } }));
const ANTHROPIC_TOOLS = ['get_weather', 'get_time'].map((name) => ({ name, input_schema: SCHEMA }));
const ask = (text, scenario) => ({ role: 'user', content: scenario ? `${text} mock:${scenario}` : text });

let world;
before(async () => { world = await startAll(); });
after(async () => { await world?.stop(); });

for (const upstream of ['anthropic', 'openai']) {
  const openai = () => new OpenAI({ baseURL: `${world.proxies[upstream].openaiFront}/v1`, apiKey: 'sk-e2e', maxRetries: 0, timeout: 15_000 });
  const anthropic = () => new Anthropic({ baseURL: world.proxies[upstream].anthropicFront, apiKey: 'sk-e2e', maxRetries: 0, timeout: 15_000 });

  describe(`openai SDK, ${upstream} upstream`, () => {
    test('create without streaming', async () => {
      const completion = await openai().chat.completions.create({ model: MODEL, messages: [ask('Hi')] });
      assert.equal(completion.choices[0].message.content, ANSWER);
      assert.equal(completion.choices[0].finish_reason, 'stop');
      assert.deepEqual([completion.usage.prompt_tokens, completion.usage.completion_tokens], [12, 7]);
    });

    test('ChatCompletionStream: content events and finalChatCompletion', async () => {
      const stream = openai().chat.completions.stream({ model: MODEL, messages: [ask('Hi')] });
      const deltas = [];
      stream.on('content.delta', ({ delta }) => deltas.push(delta));
      const final = await stream.finalChatCompletion();
      assert.ok(deltas.length > 1);
      assert.equal(deltas.join(''), ANSWER);
      assert.equal(final.choices[0].message.content, ANSWER);
      assert.equal(final.choices[0].finish_reason, 'stop');
    });

    test('raw chunks with include_usage and cached tokens', async () => {
      const stream = await openai().chat.completions.create({
        model: MODEL, messages: [ask('Hi', 'cache')], stream: true, stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const usage = chunks.at(-1).usage;
      assert.deepEqual(chunks.at(-1).choices, []);
      assert.deepEqual([usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens], [160, 5, 100]);
      assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), ANSWER);
    });

    test('parallel tool calls through the stream helper', async () => {
      const stream = openai().chat.completions.stream({ model: MODEL, messages: [ask('Weather?', 'parallel_tools')], tools: OPENAI_TOOLS });
      const done = [];
      stream.on('tool_calls.function.arguments.done', (event) => done.push(event));
      const message = (await stream.finalChatCompletion()).choices[0].message;
      assert.equal(message.content, 'Let me check.');
      assert.deepEqual(message.tool_calls.map((c) => c.function.name), ['get_weather', 'get_time', 'get_weather']);
      assert.deepEqual(message.tool_calls.map((c) => JSON.parse(c.function.arguments)), TOOL_ARGS);
      assert.deepEqual(done.map((e) => e.index), [0, 1, 2]);
    });

    test('tool round trip with the helper\'s own message', async () => {
      const client = openai();
      const first = await client.chat.completions.stream({ model: MODEL, messages: [ask('Weather?', 'tool')], tools: OPENAI_TOOLS }).finalChatCompletion();
      const assistant = first.choices[0].message;
      const final = await client.chat.completions.create({
        model: MODEL, tools: OPENAI_TOOLS,
        messages: [ask('Weather?'), assistant, { role: 'tool', tool_call_id: assistant.tool_calls[0].id, content: 'sunny' }],
      });
      assert.equal(final.choices[0].message.content, ANSWER);
    });

    test('thinking through the stream helper does not break it', async () => {
      const final = await openai().chat.completions.stream({ model: MODEL, messages: [ask('Think.', 'thinking_redacted')] }).finalChatCompletion();
      assert.equal(final.choices[0].message.content, ANSWER);
    });

    test('errors are the SDK\'s classes', async () => {
      await assert.rejects(openai().chat.completions.create({ model: MODEL, messages: [ask('Hi', 'error:429')] }),
        (error) => error instanceof OpenAI.RateLimitError && error.status === 429);
      await assert.rejects(openai().chat.completions.create({ model: MODEL, messages: [ask('Hi', 'error:401')] }),
        (error) => error instanceof OpenAI.AuthenticationError && error.status === 401);
      await assert.rejects(openai().chat.completions.create({ model: MODEL, messages: [ask('Hi', 'error:529')] }),
        (error) => error instanceof OpenAI.InternalServerError && error.status === (upstream === 'anthropic' ? 503 : 529));
    });

    test('a mid-stream error rejects the helper', async () => {
      await assert.rejects(
        openai().chat.completions.stream({ model: MODEL, messages: [ask('Hi', 'midstream_error')] }).finalChatCompletion(),
        (error) => error instanceof OpenAI.APIError,
      );
    });

    test('a truncated stream rejects the helper', async () => {
      await assert.rejects(
        openai().chat.completions.stream({ model: MODEL, messages: [ask('Hi', 'truncate')] }).finalChatCompletion(),
        (error) => error instanceof OpenAI.OpenAIError,
      );
    });

    test('models.list', async () => {
      const ids = [];
      for await (const model of openai().models.list()) ids.push(model.id);
      assert.deepEqual(ids, [upstream === 'anthropic' ? 'claude-mock-1' : 'gpt-mock-1']);
    });
  });

  describe(`anthropic SDK, ${upstream} upstream`, () => {
    test('create without streaming', async () => {
      const message = await anthropic().messages.create({ model: MODEL, max_tokens: 256, messages: [ask('Hi')] });
      assert.equal(message.content[0].text, ANSWER);
      assert.equal(message.stop_reason, 'end_turn');
      assert.deepEqual([message.usage.input_tokens, message.usage.output_tokens], [12, 7]);
    });

    test('MessageStream: text events and finalMessage', async () => {
      const stream = anthropic().messages.stream({ model: MODEL, max_tokens: 256, messages: [ask('Hi')] });
      const pieces = [];
      stream.on('text', (text) => pieces.push(text));
      const final = await stream.finalMessage();
      assert.equal(pieces.join(''), ANSWER);
      assert.equal(final.content[0].text, ANSWER);
      assert.equal(await stream.finalText(), ANSWER);
    });

    test('raw events', async () => {
      const stream = await anthropic().messages.create({ model: MODEL, max_tokens: 256, messages: [ask('Hi')], stream: true });
      const types = [];
      for await (const event of stream) types.push(event.type);
      assert.equal(types[0], 'message_start');
      assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
    });

    test('parallel tool calls through the stream helper', async () => {
      const stream = anthropic().messages.stream({ model: MODEL, max_tokens: 256, messages: [ask('Weather?', 'parallel_tools')], tools: ANTHROPIC_TOOLS });
      const final = await stream.finalMessage();
      assert.deepEqual(final.content.map((b) => b.type), ['text', 'tool_use', 'tool_use', 'tool_use']);
      assert.deepEqual(final.content.slice(1).map((b) => b.input), TOOL_ARGS);
      assert.equal(final.stop_reason, 'tool_use');
    });

    test('thinking with its signature, replayed', async () => {
      const client = anthropic();
      const thinking = { type: 'enabled', budget_tokens: 1024 };
      const final = await client.messages.stream({ model: MODEL, max_tokens: 2048, thinking, messages: [ask('Think.', 'thinking')] }).finalMessage();
      assert.deepEqual(final.content.map((b) => b.type), ['thinking', 'text']);
      assert.equal(final.content[0].thinking, THINKING);
      if (upstream === 'anthropic') assert.equal(final.content[0].signature, SIGNATURE);
      await world.clear();
      await client.messages.create({
        model: MODEL, max_tokens: 2048, thinking,
        messages: [ask('Think.'), { role: 'assistant', content: final.content }, ask('Go on.')],
      });
      const [request] = await world.requests();
      const replayed = request.body.messages[1];
      if (upstream === 'anthropic') {
        assert.deepEqual(replayed.content[0], { type: 'thinking', thinking: THINKING, signature: SIGNATURE });
      } else {
        assert.equal(replayed.reasoning_content, THINKING);
      }
    });

    test('usage with cache reads', async () => {
      const final = await anthropic().messages.stream({ model: MODEL, max_tokens: 256, messages: [ask('Hi', 'cache')] }).finalMessage();
      assert.equal(final.usage.cache_read_input_tokens, 100);
      assert.equal(final.usage.input_tokens, upstream === 'anthropic' ? 10 : 60);
    });

    test('errors are the SDK\'s classes', async () => {
      await assert.rejects(anthropic().messages.create({ model: MODEL, max_tokens: 256, messages: [ask('Hi', 'error:429')] }),
        (error) => error instanceof Anthropic.RateLimitError && error.status === 429);
      await assert.rejects(anthropic().messages.create({ model: MODEL, max_tokens: 256, messages: [ask('Hi', 'error:401')] }),
        (error) => error instanceof Anthropic.AuthenticationError && error.status === 401);
      const overloaded = upstream === 'anthropic' ? 'error:529' : 'error:503';
      await assert.rejects(anthropic().messages.create({ model: MODEL, max_tokens: 256, messages: [ask('Hi', overloaded)] }),
        (error) => error instanceof Anthropic.APIError && error.status === 529);
    });

    test('a mid-stream error rejects the helper', async () => {
      await assert.rejects(
        anthropic().messages.stream({ model: MODEL, max_tokens: 256, messages: [ask('Hi', 'midstream_error')] }).finalMessage(),
        (error) => error instanceof Anthropic.APIError,
      );
    });

    test('a truncated stream rejects the helper', async () => {
      await assert.rejects(
        anthropic().messages.stream({ model: MODEL, max_tokens: 256, messages: [ask('Hi', 'truncate')] }).finalMessage(),
        (error) => error instanceof Anthropic.AnthropicError,
      );
    });

    test('count_tokens and models.list', async () => {
      const counted = await anthropic().messages.countTokens({ model: MODEL, messages: [ask('How long is this?')] });
      assert.ok(counted.input_tokens > 0);
      const ids = [];
      for await (const model of anthropic().models.list()) ids.push(model.id);
      assert.deepEqual(ids, [upstream === 'anthropic' ? 'claude-mock-1' : 'gpt-mock-1']);
    });
  });
}
