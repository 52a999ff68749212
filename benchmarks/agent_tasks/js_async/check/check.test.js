const test = require('node:test');
const assert = require('node:assert');
const { readConfig } = require('./store');
const { start } = require('./app');

test('async', async () => {
  assert.ok(readConfig('x') instanceof Promise);
  assert.ok(start('x') instanceof Promise);
  assert.strictEqual(await start('dev'), 'debug');
  assert.strictEqual(await start('prod'), 'normal');
});
