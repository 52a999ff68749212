const test = require('node:test');
const assert = require('node:assert');
const { joinWords } = require('./words');
const { title } = require('./title');

test('param', () => {
  assert.ok(/glue/.test(joinWords.toString()));
  assert.strictEqual(title(['a', 'b']), 'A B');
});
