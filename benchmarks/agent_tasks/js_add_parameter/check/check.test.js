const test = require('node:test');
const assert = require('node:assert');
const { joinNames } = require('./names');
const { greet } = require('./greet');

test('param', () => {
  assert.ok(/separator/.test(joinNames.toString()));
  assert.strictEqual(greet(['a', 'b']), 'Hello a, b');
});
